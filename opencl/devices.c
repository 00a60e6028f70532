/* devices.c - mg_list_devices (engine/mg.h): the OpenCL devices for pickers,
 * in every build (none without OpenCL). */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/mg.h"
#ifdef MG_HAVE_OPENCL
#include "opencl/ocl.h"
#endif

int mg_list_devices(mg_device *out, int max, char *err, size_t errlen)
{
#ifdef MG_HAVE_OPENCL
	ocl_device_desc *d = NULL;
	int n = 0;
	if (ocl_list_devices(&d, &n, err, errlen))
		return -1;
	int pick = ocl_auto_device(d, n);
	for (int i = 0; i < n && i < max; i++) {
		mg_device *o = &out[i];
		memset(o, 0, sizeof *o);
		o->index = i;
		o->is_gpu = (d[i].type & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR)) != 0;
		o->is_auto = i == pick;
		o->fp16 = d[i].fp16;
		o->memory = d[i].global_mem;
		snprintf(o->name, sizeof o->name, "%s", d[i].name);
		snprintf(o->vendor, sizeof o->vendor, "%s", d[i].vendor);
		snprintf(o->version, sizeof o->version, "%s", d[i].version);
	}
	free(d);
	return n;
#else
	(void)out;
	(void)max;
	(void)err;
	(void)errlen;
	return 0;
#endif
}
