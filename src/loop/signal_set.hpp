// What the loop needs of its signal set (defined in signal.cpp) beyond
// creating and destroying it.
#pragma once

namespace spindle::detail {

class SignalSet;

// Reads the set's signalfd on the calling thread and delivers what it holds
// to the subscribers; true if it delivered anything. A signalfd shows the
// signals pending for the process and for the thread that reads or polls it,
// so only the loop's own thread sees those sent to it alone.
bool deliver_pending_signals(SignalSet& set) noexcept;

}  // namespace spindle::detail
