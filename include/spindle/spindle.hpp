// Everything spindle offers, in one include.
#pragma once

#include "spindle/context/context.hpp"
#include "spindle/context/execution.hpp"
#include "spindle/context/overflow.hpp"
#include "spindle/context/stack.hpp"
#include "spindle/fiber/cancel.hpp"
#include "spindle/fiber/combinators.hpp"
#include "spindle/fiber/fiber.hpp"
#include "spindle/fiber/runtime.hpp"
#include "spindle/fiber/wait.hpp"
#include "spindle/io/ops.hpp"
#include "spindle/loop/backend.hpp"
#include "spindle/loop/backend_kind.hpp"
#include "spindle/loop/loop.hpp"
#include "spindle/loop/timer_heap.hpp"
