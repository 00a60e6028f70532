/* cmd_devices.c - `musicgen-tui devices [--json]`: the compute backends this
 * build has, every OpenCL platform and device, and what `--backend auto`
 * would choose. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "app/cli.h"
#include "app/commands.h"
#include "engine/mg.h"
#ifdef MG_HAVE_OPENCL
#include "opencl/ocl.h"
#endif

static void usage(FILE *f)
{
	fprintf(f, "Usage: musicgen-tui devices [--json]\n"
	           "List the CPU backend and every OpenCL platform and device (name, vendor,\n"
	           "version, memory, fp16 support), marking what '--backend auto' chooses.\n"
	           "The device numbers are the ones '--device N' takes.\n"
	           "\n  --json    print one JSON object instead of text\n");
}

/* The SIMD extensions the CPU backend can dispatch to, space-separated. */
static void cpu_simd(char *buf, size_t len)
{
	buf[0] = 0;
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	static const char *const feats[] = {"sse4.2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl"};
	int have[sizeof feats / sizeof feats[0]] = {
		__builtin_cpu_supports("sse4.2"), __builtin_cpu_supports("avx"), __builtin_cpu_supports("avx2"),
		__builtin_cpu_supports("fma"), __builtin_cpu_supports("avx512f"), __builtin_cpu_supports("avx512bw"),
		__builtin_cpu_supports("avx512vl"),
	};
	for (size_t i = 0; i < sizeof feats / sizeof feats[0]; i++)
		if (have[i])
			snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? " " : "", feats[i]);
#endif
	if (!buf[0])
		snprintf(buf, len, "none detected");
}

#ifdef MG_HAVE_OPENCL
static double gib(uint64_t bytes)
{
	return (double)bytes / (1024.0 * 1024.0 * 1024.0);
}
#endif

int cmd_devices(int argc, char **argv)
{
	int json = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (cli_help_or_version(argv[i], usage)) {
			return 0;
		} else {
			fprintf(stderr, "musicgen-tui devices: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}

	long threads = sysconf(_SC_NPROCESSORS_ONLN);
	char simd[128];
	cpu_simd(simd, sizeof simd);

	int built = 0, n = 0, auto_dev = -1, status = 0;
	char err[512] = "";
#ifdef MG_HAVE_OPENCL
	ocl_device_desc *devs = NULL;
	built = 1;
	if (ocl_list_devices(&devs, &n, err, sizeof err)) {
		n = 0;
		status = 1;
	}
	auto_dev = ocl_auto_device(devs, n);
#endif

	if (json) {
		json_t *root = json_object(), *cpu = json_object(), *ocl = json_object(), *list = json_array();
		json_object_set_new(cpu, "threads", json_integer(threads > 0 ? threads : 1));
		json_object_set_new(cpu, "simd", json_string(simd));
		json_object_set_new(cpu, "auto", json_boolean(auto_dev < 0));
		json_object_set_new(root, "cpu", cpu);
		json_object_set_new(ocl, "built", json_boolean(built));
		if (err[0])
			json_object_set_new(ocl, "error", json_string(err));
#ifdef MG_HAVE_OPENCL
		for (int i = 0; i < n; i++) {
			json_t *d = json_object();
			json_object_set_new(d, "index", json_integer(i));
			json_object_set_new(d, "platform", json_integer(devs[i].platform));
			json_object_set_new(d, "platform_name", json_string(devs[i].platform_name));
			json_object_set_new(d, "name", json_string(devs[i].name));
			json_object_set_new(d, "vendor", json_string(devs[i].vendor));
			json_object_set_new(d, "version", json_string(devs[i].version));
			json_object_set_new(d, "driver", json_string(devs[i].driver));
			json_object_set_new(d, "type", json_string(ocl_device_type_name(devs[i].type)));
			json_object_set_new(d, "global_mem_bytes", json_integer((json_int_t)devs[i].global_mem));
			json_object_set_new(d, "fp16", json_boolean(devs[i].fp16));
			json_object_set_new(d, "available", json_boolean(devs[i].available));
			json_object_set_new(d, "auto", json_boolean(i == auto_dev));
			json_array_append_new(list, d);
		}
#endif
		json_object_set_new(ocl, "devices", list);
		json_object_set_new(root, "opencl", ocl);
		json_object_set_new(root, "auto", json_string(auto_dev < 0 ? "cpu" : "opencl"));
		if (auto_dev >= 0)
			json_object_set_new(root, "auto_device", json_integer(auto_dev));
#ifdef MG_HAVE_OPENCL
		int def = ocl_default_device(devs, n);
		if (def >= 0)
			json_object_set_new(root, "opencl_default_device", json_integer(def));
#endif
		char *s = json_dumps(root, JSON_INDENT(2));
		json_decref(root);
		if (s) {
			printf("%s\n", s);
			free(s);
		} else
			status = 1;
	} else {
		printf("CPU backend%s\n", auto_dev < 0 ? "  [auto]" : "");
		printf("  threads: %ld\n  SIMD:    %s\n", threads > 0 ? threads : 1, simd);
		if (!built)
			printf("OpenCL: not built (configure did not find OpenCL and CLBlast)\n");
		else if (err[0])
			printf("OpenCL: error: %s\n", err);
		else if (n == 0)
			printf("OpenCL: no platform found\n");
#ifdef MG_HAVE_OPENCL
		int last_platform = -1;
		for (int i = 0; i < n; i++) {
			const ocl_device_desc *d = &devs[i];
			if (d->platform != last_platform) {
				printf("OpenCL platform %d: %s (%s)\n", d->platform, d->platform_name, d->platform_version);
				last_platform = d->platform;
			}
			printf("  device %d: %s%s\n", i, d->name, i == auto_dev ? "  [auto]" : "");
			printf("    type %s, vendor %s, %s, driver %s\n", ocl_device_type_name(d->type), d->vendor,
			       d->version, d->driver);
			printf("    memory %.1f GiB, fp16 %s%s\n", gib(d->global_mem), d->fp16 ? "yes" : "no",
			       d->available ? "" : ", not available");
		}
		if (n > 0) {
			int def = ocl_default_device(devs, n);
			if (def >= 0)
				printf("--backend opencl without --device: device %d\n", def);
		}
		if (n > 0 && auto_dev < 0)
			printf("auto: CPU backend (no OpenCL GPU or accelerator; CPU OpenCL devices are used only with "
			       "--backend opencl)\n");
		else if (auto_dev >= 0)
			printf("auto: OpenCL device %d\n", auto_dev);
		else
			printf("auto: CPU backend\n");
#else
		printf("auto: CPU backend\n");
#endif
	}
#ifdef MG_HAVE_OPENCL
	free(devs);
#endif
	return status;
}
