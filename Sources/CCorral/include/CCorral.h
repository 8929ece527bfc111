#ifndef CCORRAL_H
#define CCORRAL_H
#include "corral_spawn.h"
#include "corral_sys.h"
#include "corral_seccomp.h"
#include "corral_guard.h"
#include "corral_init.h"
#include "corral_sha256.h"
#include "corral_store.h"
#include "corral_template_store.h"
#include "corral_memfd.h"
#include "corral_namespace_pool.h"
#endif
