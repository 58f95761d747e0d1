// An include that keeps the rule (down to the base layer), next to the violation in src/core/.
#include "qkv/error.hpp"
