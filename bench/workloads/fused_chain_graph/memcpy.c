/* The limit of fused_chain_graph: its chain reads 2^24 f32 and writes 2^24 f32. */
#define BYTES (4L << 24)
#include "../common/memcpy.h"
