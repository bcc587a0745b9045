/* Prints the library's release at run time and the header's at compile
 * time, one a line (spec/20-version_spec.lua). */
#include <stdio.h>

#include "aw.h"

int main(void)
{
  printf("%s\n%s\n", aw_library_version(), AW_VERSION_STRING);
  return 0;
}
