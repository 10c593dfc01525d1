// placeholder: filled in by the work of issue 2
#include <gtest/gtest.h>
