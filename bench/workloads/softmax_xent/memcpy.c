/* The limit of softmax_xent, "one read of the input at copy bandwidth" (issue 17): the input is
   logits and labels, 2 x [4096, 1000] f32; a copy of half of it reads and writes that many bytes,
   so it takes as long as one read of all of it at copy bandwidth (read + write bytes per second). */
#define BYTES (4L * 4096 * 1000)
#include "../common/memcpy.h"
