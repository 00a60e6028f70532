/* tokenizer.h - the T5 tokenizer: SentencePiece unigram (spiece.model, with
 * its precompiled nmt_nfkc normalisation) and T5Tokenizer's conventions as
 * MusicGen's processor uses them: special-token strings split out first, EOS
 * appended, batches right-padded with 0 plus an attention mask. */
#ifndef MG_TOKENIZER_H
#define MG_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct mg_tokenizer mg_tokenizer;

/* Loads and checks a spiece.model; 0 or -1 with err naming the file and
 * what is wrong with it. */
int mg_tokenizer_load(mg_tokenizer **out, const char *spiece_path, char *err, size_t errlen);
/* The same from memory; what names the data in messages. The data is copied. */
int mg_tokenizer_load_mem(mg_tokenizer **out, const void *data, size_t len, const char *what, char *err,
                          size_t errlen);
void mg_tokenizer_free(mg_tokenizer *t);

/* Pieces plus the 100 <extra_id_N> tokens T5Tokenizer adds (<extra_id_N> is
 * id pieces + 99 - N: 32099..32000 for t5-base's 32000 pieces). */
int mg_tokenizer_vocab_size(const mg_tokenizer *t);

/* The ids of "</s>" (appended to every text) and "<pad>" (batch padding). */
int mg_tokenizer_eos_id(const mg_tokenizer *t);
int mg_tokenizer_pad_id(const mg_tokenizer *t);

/* T5Tokenizer(text): ids with EOS appended (unless already last). *ids is
 * malloc'd; the caller frees it. */
int mg_tokenize(const mg_tokenizer *t, const char *text, int32_t **ids, int *n_ids, char *err, size_t errlen);

/* Raw SentencePiece encode (SentencePieceProcessor.encode(text)): no
 * special-token split, no EOS; *ids is malloc'd (never NULL on success). */
int mg_sp_encode(const mg_tokenizer *t, const char *text, int32_t **ids, int *n_ids, char *err, size_t errlen);

/* A batch right-padded with 0 to the longest: ids and mask are
 * [n_texts * *seq_len], malloc'd; mask is 1 on real tokens (EOS included). */
int mg_tokenize_batch(const mg_tokenizer *t, const char *const *texts, int n_texts, int32_t **ids, int32_t **mask,
                      int *seq_len, char *err, size_t errlen);

#endif
