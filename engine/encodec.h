/* encodec.h - the EnCodec audio codec of a MusicGen checkpoint: residual
 * vector quantizer and SEANet decoder/encoder (../spec/SPEC-encodec.md).
 *
 * Weights come from a safetensors set under the prefix "audio_encoder.",
 * with either weight-norm spelling (weight_g/weight_v or
 * parametrizations.weight.original0/original1); the norm is folded once at
 * bind time. Every size is read from mg_encodec_config and checked against the
 * tensors' shapes.
 *
 * Activations are [channels][time], time contiguous. Convolutions run as
 * OpenBLAS products, split over time across the pool's threads; BLAS itself is
 * kept single-threaded during a call (its previous thread count is restored
 * afterwards), so the pool's threads are the only ones working.
 *
 * Thread safety: a bound codec is read-only, but OpenBLAS' thread count is
 * process-wide: run one EnCodec call at a time, and not while another thread
 * calls OpenBLAS (the engine thread does everything in turn, so it holds).
 *
 * Memory: a decode of F frames holds three activation buffers of the widest
 * layer (musicgen-small: 3 x 64 channels x F x 640 floats, about 250 MB for
 * 10 s) plus the LSTM's gates, all freed before it returns.
 */
#ifndef MG_ENCODEC_H
#define MG_ENCODEC_H

#include <stddef.h>
#include <stdint.h>

#include "engine/config.h"
#include "engine/linear.h"
#include "engine/pool.h"
#include "engine/safetensors.h"

enum mg_encodec_op {
	MG_ENCODEC_CONV,       /* EncodecConv1d */
	MG_ENCODEC_CONVT,      /* EncodecConvTranspose1d */
	MG_ENCODEC_LSTM,       /* EncodecLSTM (with skip) */
	MG_ENCODEC_ELU,        /* nn.ELU(alpha 1) */
	MG_ENCODEC_RESBLOCK,   /* EncodecResnetBlock */
};

/* One convolution, weight norm folded. Weights are stored per tap:
 * w[k][cout][cin] for both Conv1d and ConvTranspose1d. */
typedef struct mg_encodec_conv {
	int cin, cout, kernel, stride, dilation;
	int transposed;
	float *w;
	float *bias;   /* [cout] */
} mg_encodec_conv;

/* A multi-layer LSTM; gate rows reordered unit by unit ([unit][i f g o]) so
 * that one thread's units are one contiguous block of rows. */
typedef struct mg_encodec_lstm {
	int dim, layers;
	float **w_ih;  /* [layers] -> [4 dim][dim] */
	float **w_hh;  /* [layers] -> [4 dim][dim]; NULL entries once halved or in q8 */
	uint16_t **w_hh16; /* mg_encodec_lstm_half: w_hh as IEEE halves, else NULL */
	mg_mat *w_hh8;     /* mg_encodec_lstm_q8: w_hh as q8 matrices, else NULL */
	float **bias;  /* [layers] -> [4 dim], bias_ih + bias_hh */
} mg_encodec_lstm;

typedef struct mg_encodec_layer {
	int op;              /* enum mg_encodec_op */
	int cin, cout;       /* channels in and out */
	mg_encodec_conv conv;        /* CONV, CONVT */
	mg_encodec_conv block[2];    /* RESBLOCK: block.1 (dim -> hidden), block.3 (hidden -> dim) */
	int has_shortcut;            /* RESBLOCK: conv shortcut instead of identity */
	mg_encodec_conv shortcut;
	mg_encodec_lstm lstm;        /* LSTM */
} mg_encodec_layer;

typedef struct mg_encodec {
	mg_encodec_config c;
	int n_dec, n_enc;
	mg_encodec_layer *dec;   /* HF audio_encoder.decoder.layers, same indices */
	mg_encodec_layer *enc;   /* HF audio_encoder.encoder.layers */
	int n_q_stored;          /* quantizer layers the checkpoint stores (the most decode can sum) */
	int n_q;                 /* mg_encodec_decode's count: the config's num_quantizers, at most n_q_stored */
	int n_q_encode;          /* quantizers encode uses (HF: default bandwidth target_bandwidths[0]) */
	float *codebook;         /* [n_q_stored][codebook_size][codebook_dim] */
	float *codebook_sq;      /* [n_q_stored][codebook_size]: sum of squares of each row */
	size_t n_params;
} mg_encodec;

int mg_encodec_bind(mg_encodec *e, const st_set *st, const mg_encodec_config *c, char *err, size_t errlen);
/* The decoder and quantizer only (about half the weights; musicgen-small:
 * 116 MB less): encode then fails with a message. For text-to-music, which
 * never encodes. */
int mg_encodec_bind_decoder(mg_encodec *e, const st_set *st, const mg_encodec_config *c, char *err,
                            size_t errlen);
void mg_encodec_free(mg_encodec *e);
/* Keeps the LSTMs' recurrent matrices (read in full at every frame: half
 * of musicgen-small's decode time) as IEEE halves, for the reduced-precision
 * weight formats: half their bytes, 13% off a musicgen-small-shaped decode,
 * audio within a relative L2 distance of about 1e-5 of the float32 decode
 * (test_encodec, bench_encodec). */
int mg_encodec_lstm_half(mg_encodec *e, char *err, size_t errlen);
/* The same as q8 matrices (linear.h: int8 per block of 64 with a scale,
 * the products of the decoder's q8 weights), for the q8 format: about a
 * quarter of the float32 bytes; audio within a relative L2 distance of
 * about 1e-3 of the float32 decode (test_encodec, bench_encodec). */
int mg_encodec_lstm_q8(mg_encodec *e, char *err, size_t errlen);

/* Adds random EnCodec weights of the shape c describes to an in-memory set
 * (st_new_memory), under the names bind expects: for benchmarks. */
int mg_encodec_random_weights(st_set *out, const mg_encodec_config *c, uint64_t seed, char *err, size_t errlen);

/* Samples decode produces for F frames (F x hop). */
int64_t mg_encodec_decoded_length(const mg_encodec *e, int F);
/* Frames encode produces for n samples (0 without an encoder). */
int mg_encodec_encoded_frames(const mg_encodec *e, int64_t n_samples);
/* Quantizer layers the checkpoint stores (the most decode can use). */
int mg_encodec_quantizers(const mg_encodec *e);
/* Quantizers in the codes encode returns (n_q_encode). */
int mg_encodec_encode_quantizers(const mg_encodec *e);
/* Weights the bound codec holds after folding (convolutions, biases, LSTM,
 * codebooks). */
size_t mg_encodec_param_count(const mg_encodec *e);

/* Called after every layer with its output, for tests: layer -1 is the RVQ
 * decode (decoder input) and otherwise the HF module index; x is
 * [channels][length]. With a hook, every ELU is its own pass (without one,
 * an ELU before a convolution is applied as the convolution reads). */
typedef void (*mg_encodec_tap)(void *user, int layer, const float *x, int channels, int64_t length);

/* codes [n_q][F] (values in [0, codebook_size)) -> audio
 * [audio_channels][F * hop]: the first n_q quantizers' codebooks are summed,
 * as HF's quantizer.decode does with n_q rows of codes. MusicGen passes its
 * num_codebooks / audio_channels codebooks of one channel; 1 <= n_q <=
 * mg_encodec_quantizers(e). */
int mg_encodec_decode_n(const mg_encodec *e, mg_pool *pool, const int32_t *codes, int n_q, int F, float *audio,
                        char *err, size_t errlen);
/* The same with n_q = e->n_q: the config's num_quantizers (target_bandwidths[-1]
 * as transformers 4.x reads it; checkpoints saved by transformers 5 store more
 * layers); prefer mg_encodec_decode_n with the decoder's codebook count. */
int mg_encodec_decode(const mg_encodec *e, mg_pool *pool, const int32_t *codes, int F, float *audio,
                      char *err, size_t errlen);
/* S sequences of F frames at once (the takes of a batch, the channels of a
 * stereo take): codes [S][n_q][F] -> audio [S][audio_channels][F * hop].
 * The same numbers as S calls of mg_encodec_decode_n, up to float rounding;
 * the LSTM reads its weights once per step for all S, so S sequences cost
 * less than S calls. */
int mg_encodec_decode_batch(const mg_encodec *e, mg_pool *pool, const int32_t *codes, int S, int n_q, int F,
                            float *audio, char *err, size_t errlen);
int mg_encodec_decode_tap(const mg_encodec *e, mg_pool *pool, const int32_t *codes, int n_q, int F, float *audio,
                          mg_encodec_tap tap, void *user, char *err, size_t errlen);

/* audio [audio_channels][n_samples] -> *codes, malloc'd
 * [mg_encodec_encode_quantizers(e)][*F]. The caller frees *codes. */
int mg_encodec_encode(const mg_encodec *e, mg_pool *pool, const float *audio, int64_t n_samples,
                      int32_t **codes, int *F, char *err, size_t errlen);
/* As above; tap also sees the embeddings (the last layer's output). */
int mg_encodec_encode_tap(const mg_encodec *e, mg_pool *pool, const float *audio, int64_t n_samples,
                          int32_t **codes, int *F, mg_encodec_tap tap, void *user, char *err, size_t errlen);

#endif
