/* safetensors.h - the safetensors container: memory-mapped, validated before
 * use, single files or sharded checkpoints (model.safetensors.index.json).
 * Also an in-memory set, so that random weights of a given shape (bench) go
 * through the same binding code as files. */
#ifndef MG_SAFETENSORS_H
#define MG_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum st_dtype {
	ST_F64, ST_F32, ST_F16, ST_BF16,
	ST_I64, ST_I32, ST_I16, ST_I8,
	ST_U64, ST_U32, ST_U16, ST_U8,
	ST_BOOL,
	ST_F8_E4M3, ST_F8_E5M2,
} st_dtype;

#define ST_MAX_DIMS 8

typedef struct st_tensor {
	const char *name;
	st_dtype dtype;
	int ndim;
	int64_t shape[ST_MAX_DIMS];
	int64_t numel;
	const uint8_t *data;  /* inside the mapping (or owned memory); may be unaligned */
	size_t nbytes;
	const char *file;     /* the file it came from (for error messages) */
} st_tensor;

typedef struct st_set st_set;

/* path: a .safetensors file, a model.safetensors.index.json, or a directory
 * holding model.safetensors or model.safetensors.index.json. */
int st_open(st_set **out, const char *path, char *err, size_t errlen);
void st_close(st_set *s);

/* An empty in-memory set; st_add_owned takes ownership of data (malloc'd). */
st_set *st_new_memory(void);
int st_add_owned(st_set *s, const char *name, st_dtype dt, int ndim, const int64_t *shape, void *data);

const st_tensor *st_find(const st_set *s, const char *name);
size_t st_count(const st_set *s);
const st_tensor *st_at(const st_set *s, size_t i);

/* Gives back the memory of t's bytes once they have been converted: whole
 * pages of a mapped file inside the tensor are dropped from the process
 * (madvise MADV_DONTNEED; they are read again from the file if touched).
 * Tensors of in-memory sets are left as they are. */
void st_release(const st_set *s, const st_tensor *t);

size_t st_dtype_size(st_dtype dt);
const char *st_dtype_name(st_dtype dt);
/* Whether st_to_f32 converts dt (F32, F16, BF16, F64). */
int st_dtype_is_float(st_dtype dt);

/* Converts t (F32, F16, BF16 or F64) to float32 into dst[t->numel]. */
int st_to_f32(const st_tensor *t, float *dst, char *err, size_t errlen);

/* 0 when every value of t is finite (integer dtypes always are); else -1
 * with a message naming the file, the tensor and the first bad element.
 * Reads the mapped bytes in place (no conversion, no allocation), so it
 * suits tables that are used without being converted (embeddings). */
int st_check_finite(const st_tensor *t, char *err, size_t errlen);

/* Exact IEEE half -> float (subnormals, inf, NaN). */
float st_f16_to_f32(uint16_t h);
uint16_t st_f32_to_f16(float f);

#endif
