// Table-driven tests of L4 authorization against Istio's semantics.
#include "rbac/rbac.h"

#include "support/testing.h"
