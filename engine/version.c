/* version.c - the engine's version string. */
#include "autoconfig.h"
#include "engine/mg.h"

const char *mg_version(void)
{
	return PACKAGE_VERSION;
}
