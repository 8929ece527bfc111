#ifndef CCORRAL_ARGUMENTS_H
#define CCORRAL_ARGUMENTS_H

#include "corral_argv.h"

#endif
