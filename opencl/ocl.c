/* ocl.c - OpenCL platform and device discovery, backend choice, context set-up
 * and the program build with its binary cache. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/mg.h"
#include "opencl/ocl.h"

const char *ocl_strerror(cl_int code)
{
	switch (code) {
	case CL_SUCCESS: return "success";
	case CL_DEVICE_NOT_FOUND: return "device not found";
	case CL_DEVICE_NOT_AVAILABLE: return "device not available";
	case CL_COMPILER_NOT_AVAILABLE: return "compiler not available";
	case CL_MEM_OBJECT_ALLOCATION_FAILURE: return "out of device memory (allocation failure)";
	case CL_OUT_OF_RESOURCES: return "out of resources";
	case CL_OUT_OF_HOST_MEMORY: return "out of host memory";
	case CL_BUILD_PROGRAM_FAILURE: return "program build failure";
	case CL_INVALID_VALUE: return "invalid value";
	case CL_INVALID_DEVICE: return "invalid device";
	case CL_INVALID_BINARY: return "invalid binary";
	case CL_INVALID_BUILD_OPTIONS: return "invalid build options";
	case CL_INVALID_PROGRAM_EXECUTABLE: return "invalid program executable";
	case CL_INVALID_KERNEL_NAME: return "invalid kernel name";
	case CL_INVALID_KERNEL_ARGS: return "invalid kernel arguments";
	case CL_INVALID_ARG_INDEX: return "invalid argument index";
	case CL_INVALID_ARG_SIZE: return "invalid argument size";
	case CL_INVALID_ARG_VALUE: return "invalid argument value";
	case CL_INVALID_MEM_OBJECT: return "invalid memory object";
	case CL_INVALID_WORK_GROUP_SIZE: return "invalid work-group size";
	case CL_INVALID_WORK_ITEM_SIZE: return "invalid work-item size";
	case CL_INVALID_GLOBAL_WORK_SIZE: return "invalid global work size";
	case CL_INVALID_BUFFER_SIZE: return "invalid buffer size";
	case CL_INVALID_COMMAND_QUEUE: return "invalid command queue";
	case CL_INVALID_CONTEXT: return "invalid context";
	case CL_INVALID_PLATFORM: return "invalid platform";
	case CL_INVALID_OPERATION: return "invalid operation";
	case CL_MAP_FAILURE: return "map failure";
	case -1001: return "no OpenCL platform found (ICD loader)";
	default: return "OpenCL error";
	}
}

const char *ocl_device_type_name(cl_device_type t)
{
	if (t & CL_DEVICE_TYPE_GPU)
		return "GPU";
	if (t & CL_DEVICE_TYPE_ACCELERATOR)
		return "accelerator";
	if (t & CL_DEVICE_TYPE_CPU)
		return "CPU";
	return "other";
}

static void get_str(cl_device_id d, cl_device_info what, char *buf, size_t len)
{
	buf[0] = 0;
	if (clGetDeviceInfo(d, what, len - 1, buf, NULL) != CL_SUCCESS)
		snprintf(buf, len, "?");
	buf[len - 1] = 0;
}

static void describe(ocl_device_desc *o, cl_platform_id p, cl_device_id d)
{
	cl_ulong u = 0;
	cl_bool b = CL_FALSE, comp = CL_FALSE;
	size_t wg = 0, extlen = 0;

	o->pid = p;
	o->did = d;
	if (clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof o->platform_name - 1, o->platform_name, NULL))
		snprintf(o->platform_name, sizeof o->platform_name, "?");
	if (clGetPlatformInfo(p, CL_PLATFORM_VERSION, sizeof o->platform_version - 1, o->platform_version, NULL))
		snprintf(o->platform_version, sizeof o->platform_version, "?");
	get_str(d, CL_DEVICE_NAME, o->name, sizeof o->name);
	get_str(d, CL_DEVICE_VENDOR, o->vendor, sizeof o->vendor);
	get_str(d, CL_DEVICE_VERSION, o->version, sizeof o->version);
	get_str(d, CL_DRIVER_VERSION, o->driver, sizeof o->driver);
	clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof o->type, &o->type, NULL);
	if (!clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof u, &u, NULL))
		o->global_mem = u;
	if (!clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof u, &u, NULL))
		o->max_alloc = u;
	if (!clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL))
		o->max_wg = wg;
	clGetDeviceInfo(d, CL_DEVICE_AVAILABLE, sizeof b, &b, NULL);
	clGetDeviceInfo(d, CL_DEVICE_COMPILER_AVAILABLE, sizeof comp, &comp, NULL);
	o->available = b && comp;
	if (!clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &extlen) && extlen) {
		char *ext = malloc(extlen + 1);
		if (ext && !clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, extlen, ext, NULL)) {
			ext[extlen] = 0;
			o->fp16 = strstr(ext, "cl_khr_fp16") != NULL;
		}
		free(ext);
	}
}

int ocl_list_devices(ocl_device_desc **out, int *n, char *err, size_t errlen)
{
	cl_uint np = 0;
	cl_int rc;

	*out = NULL;
	*n = 0;
	rc = clGetPlatformIDs(0, NULL, &np);
	if (rc == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (rc == CL_SUCCESS && np == 0))
		return 0;
	if (rc != CL_SUCCESS) {
		snprintf(err, errlen, "clGetPlatformIDs: %s (%d)", ocl_strerror(rc), rc);
		return -1;
	}
	cl_platform_id *plats = calloc(np, sizeof *plats);
	if (!plats) {
		snprintf(err, errlen, "out of memory listing OpenCL platforms");
		return -1;
	}
	rc = clGetPlatformIDs(np, plats, NULL);
	if (rc != CL_SUCCESS) {
		free(plats);
		snprintf(err, errlen, "clGetPlatformIDs: %s (%d)", ocl_strerror(rc), rc);
		return -1;
	}
	ocl_device_desc *list = NULL;
	int count = 0;
	for (cl_uint p = 0; p < np; p++) {
		cl_uint nd = 0;
		if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0)
			continue;
		cl_device_id *ids = calloc(nd, sizeof *ids);
		ocl_device_desc *grown = realloc(list, (size_t)(count + (int)nd) * sizeof *list);
		if (!ids || !grown) {
			free(ids);
			free(grown ? grown : list);
			free(plats);
			snprintf(err, errlen, "out of memory listing OpenCL devices");
			return -1;
		}
		list = grown;
		if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, ids, NULL) == CL_SUCCESS) {
			for (cl_uint d = 0; d < nd; d++) {
				ocl_device_desc *o = &list[count];
				memset(o, 0, sizeof *o);
				o->index = count;
				o->platform = (int)p;
				describe(o, plats[p], ids[d]);
				count++;
			}
		}
		free(ids);
	}
	free(plats);
	*out = list;
	*n = count;
	return 0;
}

int ocl_auto_device(const ocl_device_desc *d, int n)
{
	/* the GPU/accelerator with the most memory (a discrete card before an
	 * integrated one); the lowest number among equals */
	int best = -1;
	for (int i = 0; i < n; i++)
		if (d[i].available && (d[i].type & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR)) &&
		    (best < 0 || d[i].global_mem > d[best].global_mem))
			best = i;
	return best;
}

int ocl_default_device(const ocl_device_desc *d, int n)
{
	int i = ocl_auto_device(d, n);
	if (i >= 0)
		return i;
	for (i = 0; i < n; i++)
		if (d[i].available)
			return i;
	return -1;
}

int ocl_choose(int backend, int device, ocl_device_desc *chosen, char *notice, size_t noticelen,
               char *err, size_t errlen)
{
	ocl_device_desc *list = NULL;
	int n = 0, pick;

	if (notice && noticelen)
		notice[0] = 0;
	if (backend == MG_BACKEND_CPU)
		return 0;
	if (ocl_list_devices(&list, &n, err, errlen)) {
		if (backend == MG_BACKEND_AUTO) {
			snprintf(notice, noticelen, "OpenCL unavailable (%s); using the CPU backend", err);
			return 0;
		}
		return -1;
	}
	if (n == 0) {
		free(list);
		if (backend == MG_BACKEND_AUTO)
			return 0;
		snprintf(err, errlen, "--backend opencl: no OpenCL platform found (is an OpenCL driver installed?)");
		return -1;
	}
	if (device >= 0) {
		if (device >= n) {
			snprintf(err, errlen, "--device %d: there are only %d OpenCL devices (see 'musicgen-tui devices')",
			         device, n);
			free(list);
			return -1;
		}
		if (!list[device].available) {
			snprintf(err, errlen, "--device %d (%s) is not available or has no compiler", device,
			         list[device].name);
			free(list);
			return -1;
		}
		pick = device;
	} else if (backend == MG_BACKEND_AUTO) {
		pick = ocl_auto_device(list, n);
		if (pick < 0) {
			free(list);
			return 0;
		}
	} else {
		pick = ocl_default_device(list, n);
		if (pick < 0) {
			snprintf(err, errlen, "--backend opencl: none of the %d OpenCL devices is available", n);
			free(list);
			return -1;
		}
	}
	*chosen = list[pick];
	free(list);
	return 1;
}

uint64_t ocl_hash64(const void *data, size_t n, uint64_t h)
{
	const unsigned char *p = data;
	if (!h)
		h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

int ocl_cache_dir(char *buf, size_t len)
{
	const char *x = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	if (x && x[0] == '/')
		snprintf(buf, len, "%s/musicgen-tui", x);
	else if (home && *home)
		snprintf(buf, len, "%s/.cache/musicgen-tui", home);
	else
		return -1;
	return 0;
}

/* mkdir -p with mode 0700 for the directories it creates. */
static int make_dirs(const char *path)
{
	char tmp[1024];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return -1;
	return 0;
}

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	long n;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return buf;
}

/* Writes data to path through a temporary file + fsync + rename. */
static int write_file_atomic(const char *path, const void *data, size_t len)
{
	char tmp[1100];
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	FILE *f = fopen(tmp, "wb");
	if (!f)
		return -1;
	int ok = fwrite(data, 1, len, f) == len && fflush(f) == 0 && fsync(fileno(f)) == 0;
	ok = (fclose(f) == 0) && ok;
	if (!ok || rename(tmp, path)) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static const char *build_options = "-cl-std=CL1.2";

static const char *kernel_names[OK_COUNT] = {
	[OK_FILL] = "fill",
	[OK_BIAS_ROWS] = "bias_rows",
	[OK_TRANSPOSE2D] = "transpose2d",
	[OK_RMS_NORM] = "rms_norm",
	[OK_LAYER_NORM] = "layer_norm",
	[OK_GELU] = "gelu",
	[OK_RELU] = "relu",
	[OK_ELU] = "elu",
	[OK_GATED_ACT] = "gated_act",
	[OK_ADD] = "add",
	[OK_SOFTMAX_ROWS] = "softmax_rows",
	[OK_ATTENTION] = "attention",
	[OK_KV_APPEND] = "kv_append",
	[OK_EMBED_SUM] = "embed_sum",
	[OK_EMBED_ROWS] = "embed_rows",
	[OK_ROWS_MASK] = "rows_mask",
	[OK_LOGITS_PROCESS] = "logits_process",
	[OK_ARGMAX_ROWS] = "argmax_rows",
	[OK_PAD_REFLECT] = "pad_reflect",
	[OK_CONV1D] = "conv1d",
	[OK_CONV_TRANSPOSE1D] = "conv_transpose1d",
	[OK_LSTM_CELL] = "lstm_cell",
	[OK_RVQ_DECODE] = "rvq_decode",
	[OK_LINEAR_ROWS] = "linear_rows",
	[OK_LINEAR_ROWS_H] = "linear_rows_h",
};

static void save_build_log(ocl_ctx *c, cl_program prog, const char *dir, uint64_t key, char *path, size_t pathlen)
{
	size_t n = 0;
	path[0] = 0;
	if (clGetProgramBuildInfo(prog, c->dev.did, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) || !n)
		return;
	char *log = malloc(n + 1);
	if (!log)
		return;
	if (!clGetProgramBuildInfo(prog, c->dev.did, CL_PROGRAM_BUILD_LOG, n, log, NULL)) {
		log[n] = 0;
		if (dir && !make_dirs(dir)) {
			snprintf(path, pathlen, "%s/build-%016llx.log", dir, (unsigned long long)key);
			if (write_file_atomic(path, log, strlen(log)))
				path[0] = 0;
		}
	}
	free(log);
}

static int build_program(ocl_ctx *c, const char *src, size_t srclen, ocl_notice_fn notice, void *ud, char *err,
                         size_t errlen)
{
	char dir[900];
	int have_dir = ocl_cache_dir(dir, sizeof dir) == 0;
	uint64_t key = ocl_hash64(src, srclen, 0);
	key = ocl_hash64(c->dev.name, strlen(c->dev.name), key);
	key = ocl_hash64(c->dev.driver, strlen(c->dev.driver), key);
	key = ocl_hash64(c->dev.platform_version, strlen(c->dev.platform_version), key);
	key = ocl_hash64(build_options, strlen(build_options), key);
	cl_int rc;

	c->cache_file[0] = 0;
	if (have_dir) {
		snprintf(c->cache_file, sizeof c->cache_file, "%s/kernels-%016llx.bin", dir, (unsigned long long)key);
		size_t len = 0;
		unsigned char *bin = read_file(c->cache_file, &len);
		if (bin) {
			const unsigned char *bins[1] = {bin};
			cl_int status = CL_SUCCESS;
			cl_program p = clCreateProgramWithBinary(c->context, 1, &c->dev.did, &len, bins, &status, &rc);
			free(bin);
			if (p && rc == CL_SUCCESS && status == CL_SUCCESS &&
			    clBuildProgram(p, 1, &c->dev.did, build_options, NULL, NULL) == CL_SUCCESS) {
				c->program = p;
				c->from_cache = 1;
				return 0;
			}
			if (p)
				clReleaseProgram(p); /* stale or foreign binary: rebuild from source */
		}
	}

	if (notice)
		notice("compiling kernels (first run on this device; cached afterwards)", ud);
	cl_program p = clCreateProgramWithSource(c->context, 1, &src, &srclen, &rc);
	if (!p || rc != CL_SUCCESS) {
		snprintf(err, errlen, "clCreateProgramWithSource: %s (%d)", ocl_strerror(rc), rc);
		return -1;
	}
	rc = clBuildProgram(p, 1, &c->dev.did, build_options, NULL, NULL);
	if (rc != CL_SUCCESS) {
		char logpath[1024];
		save_build_log(c, p, have_dir ? dir : NULL, key, logpath, sizeof logpath);
		snprintf(err, errlen, "building the OpenCL kernels for %s failed: %s (%d)%s%s", c->dev.name,
		         ocl_strerror(rc), rc, logpath[0] ? "; build log in " : "", logpath);
		clReleaseProgram(p);
		return -1;
	}
	c->program = p;
	if (have_dir) {
		size_t len = 0;
		if (!clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof len, &len, NULL) && len) {
			unsigned char *bin = malloc(len);
			unsigned char *bins[1] = {bin};
			if (bin && !clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) &&
			    !make_dirs(dir))
				write_file_atomic(c->cache_file, bin, len); /* a failed cache write only costs time */
			free(bin);
		}
	}
	return 0;
}

int ocl_ctx_create(ocl_ctx **out, const ocl_device_desc *desc, ocl_notice_fn notice, void *user_data,
                   char *err, size_t errlen)
{
	return ocl_ctx_create_src(out, desc, (const char *)ocl_program_source, ocl_program_source_len, notice,
	                          user_data, err, errlen);
}

int ocl_ctx_create_src(ocl_ctx **out, const ocl_device_desc *desc, const char *src, size_t srclen,
                       ocl_notice_fn notice, void *user_data, char *err, size_t errlen)
{
	cl_int rc;
	ocl_ctx *c = calloc(1, sizeof *c);

	*out = NULL;
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->dev = *desc;
	cl_context_properties props[3] = {CL_CONTEXT_PLATFORM, (cl_context_properties)desc->pid, 0};
	c->context = clCreateContext(props, 1, &desc->did, NULL, NULL, &rc);
	if (!c->context || rc != CL_SUCCESS) {
		snprintf(err, errlen, "clCreateContext on %s: %s (%d)", desc->name, ocl_strerror(rc), rc);
		ocl_ctx_free(c);
		return -1;
	}
	c->queue = clCreateCommandQueue(c->context, desc->did, 0, &rc);
	if (!c->queue || rc != CL_SUCCESS) {
		snprintf(err, errlen, "clCreateCommandQueue on %s: %s (%d)", desc->name, ocl_strerror(rc), rc);
		ocl_ctx_free(c);
		return -1;
	}
	if (build_program(c, src, srclen, notice, user_data, err, errlen)) {
		ocl_ctx_free(c);
		return -1;
	}
	size_t wg = desc->max_wg ? desc->max_wg : 64;
	if (wg > 256)
		wg = 256;
	for (int i = 0; i < OK_COUNT; i++) {
		c->k[i] = clCreateKernel(c->program, kernel_names[i], &rc);
		if (!c->k[i] || rc != CL_SUCCESS) {
			snprintf(err, errlen, "clCreateKernel(%s): %s (%d)", kernel_names[i], ocl_strerror(rc), rc);
			ocl_ctx_free(c);
			return -1;
		}
		size_t kwg = 0;
		if (!clGetKernelWorkGroupInfo(c->k[i], desc->did, CL_KERNEL_WORK_GROUP_SIZE, sizeof kwg, &kwg, NULL) &&
		    kwg && kwg < wg)
			wg = kwg;
	}
	size_t p2 = 1;
	while (p2 * 2 <= wg)
		p2 *= 2;
	c->wg = p2;
	*out = c;
	return 0;
}

void ocl_ctx_free(ocl_ctx *c)
{
	if (!c)
		return;
	if (c->queue)
		clFinish(c->queue);
	for (int i = 0; i < OK_COUNT; i++)
		if (c->k[i])
			clReleaseKernel(c->k[i]);
	if (c->program)
		clReleaseProgram(c->program);
	if (c->queue)
		clReleaseCommandQueue(c->queue);
	if (c->context)
		clReleaseContext(c->context);
	free(c);
}

cl_mem ocl_buf(ocl_ctx *c, size_t bytes, const char *what, char *err, size_t errlen)
{
	cl_int rc;
	if (c->dev.max_alloc && bytes > c->dev.max_alloc) {
		snprintf(err, errlen, "%s needs %.1f MB in one buffer; %s allows at most %.1f MB (out of device memory)",
		         what, bytes / 1e6, c->dev.name, c->dev.max_alloc / 1e6);
		return NULL;
	}
	cl_mem b = clCreateBuffer(c->context, CL_MEM_READ_WRITE, bytes ? bytes : 4, NULL, &rc);
	if (!b || rc != CL_SUCCESS) {
		snprintf(err, errlen, "allocating %zu bytes on %s for %s: %s (%d)", bytes, c->dev.name, what,
		         ocl_strerror(rc), rc);
		return NULL;
	}
	return b;
}

cl_mem ocl_buf_from(ocl_ctx *c, const void *src, size_t bytes, const char *what, char *err, size_t errlen)
{
	cl_mem b = ocl_buf(c, bytes, what, err, errlen);
	if (b && bytes && ocl_write(c, b, 0, src, bytes, err, errlen)) {
		clReleaseMemObject(b);
		return NULL;
	}
	return b;
}

int ocl_write(ocl_ctx *c, cl_mem b, size_t off, const void *src, size_t bytes, char *err, size_t errlen)
{
	cl_int rc = clEnqueueWriteBuffer(c->queue, b, CL_TRUE, off, bytes, src, 0, NULL, NULL);
	if (rc != CL_SUCCESS) {
		snprintf(err, errlen, "writing %zu bytes to %s: %s (%d)", bytes, c->dev.name, ocl_strerror(rc), rc);
		return -1;
	}
	return 0;
}

int ocl_read(ocl_ctx *c, cl_mem b, size_t off, void *dst, size_t bytes, char *err, size_t errlen)
{
	cl_int rc = clEnqueueReadBuffer(c->queue, b, CL_TRUE, off, bytes, dst, 0, NULL, NULL);
	if (rc != CL_SUCCESS) {
		snprintf(err, errlen, "reading %zu bytes from %s: %s (%d)", bytes, c->dev.name, ocl_strerror(rc), rc);
		return -1;
	}
	return 0;
}

int ocl_finish(ocl_ctx *c, char *err, size_t errlen)
{
	cl_int rc = clFinish(c->queue);
	if (rc != CL_SUCCESS) {
		snprintf(err, errlen, "OpenCL queue on %s: %s (%d)", c->dev.name, ocl_strerror(rc), rc);
		return -1;
	}
	return 0;
}

void ocl_release(cl_mem *b)
{
	if (*b)
		clReleaseMemObject(*b);
	*b = NULL;
}
