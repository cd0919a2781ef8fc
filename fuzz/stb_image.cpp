// The stb_image and stb_image_write functions of fuzz_image, in a translation unit of their own:
// run.sh compiles it with AddressSanitizer but without UndefinedBehaviorSanitizer. Debian's
// stb_image has undefined behaviour that is not ddpmkit's to fix (a memcpy from a null pointer
// of 0 bytes for an empty IDAT chunk, a signed overflow in the PNM header reader: inputs in
// findings/image/); with it fatal, fuzz_image would stop there and test nothing of read_image.
#define DDPMKIT_STB_IMPLEMENTATION
#include "ddpmkit/io/image.hpp"
