# -Wall -Wextra -Werror on every target of ours, for GCC 12 and Clang 14 alike.
add_library(spindle_warnings INTERFACE)
target_compile_options(spindle_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX,C>:-Wall -Wextra -Werror -Wno-missing-field-initializers>)
