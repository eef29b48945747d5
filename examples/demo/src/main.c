#include <stdio.h>

#include "greet.h"

int main(void)
{
	printf("%s\n", greet("build server"));
	return 0;
}
