# SPINDLE_SANITIZE=address builds everything with ASan+UBSan, =thread with TSan.
# The context layer annotates every stack switch for both (src/context/switch.cpp),
# so fibers are understood by the sanitizers rather than hidden from them.
if(SPINDLE_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
elseif(SPINDLE_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(NOT SPINDLE_SANITIZE STREQUAL "")
  message(FATAL_ERROR "SPINDLE_SANITIZE must be '', 'address' or 'thread', not '${SPINDLE_SANITIZE}'")
endif()
