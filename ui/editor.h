/* editor.h - a one-line UTF-8 text editor with readline-style operations,
 * independent of curses so it can be tested on its own. The cursor is a
 * byte offset that always sits on a character boundary. */
#ifndef MG_EDITOR_H
#define MG_EDITOR_H

#include <stddef.h>

struct editor {
	char *buf;      /* NUL-terminated UTF-8 */
	size_t cap;     /* bytes available including the NUL */
	size_t len, cur;
	size_t scroll;  /* first byte shown (kept by editor_view) */
};

void editor_init(struct editor *e, char *buf, size_t cap);  /* buf holds the initial text */
void editor_set(struct editor *e, const char *text);        /* cursor to the end */
/* Inserts UTF-8 bytes (one or more whole characters); 0, or -1 when full. */
int editor_insert(struct editor *e, const char *utf8, size_t n);
int editor_insert_wchar(struct editor *e, unsigned cp);
void editor_left(struct editor *e);
void editor_right(struct editor *e);
void editor_home(struct editor *e);
void editor_end(struct editor *e);
void editor_word_left(struct editor *e);   /* Alt-B */
void editor_word_right(struct editor *e);  /* Alt-F */
void editor_backspace(struct editor *e);
void editor_delete(struct editor *e);
void editor_kill_end(struct editor *e);    /* Ctrl-K */
void editor_kill_start(struct editor *e);  /* Ctrl-U */
void editor_kill_word(struct editor *e);   /* Ctrl-W: the word before the cursor */

/* Display columns of bytes [from, to). */
int editor_width(const char *s, size_t from, size_t to);
/* Adjusts scroll so the cursor is visible in a field `cols` wide; returns
 * the cursor's column within the field. */
int editor_view(struct editor *e, int cols);

#endif
