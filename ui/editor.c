/* editor.c - the one-line UTF-8 editor (see editor.h). */
/* wcwidth() is an X/Open interface. */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700
#endif
#include "autoconfig.h"

#include <string.h>
#include <wchar.h>

#include "ui/editor.h"

static int is_cont(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

void editor_init(struct editor *e, char *buf, size_t cap)
{
	e->buf = buf;
	e->cap = cap;
	e->len = strnlen(buf, cap - 1);
	e->buf[e->len] = '\0';
	e->cur = e->len;
	e->scroll = 0;
}

void editor_set(struct editor *e, const char *text)
{
	size_t n = strlen(text);
	if (n >= e->cap)
		n = e->cap - 1;
	while (n > 0 && is_cont((unsigned char)text[n])) /* never cut a character */
		n--;
	memcpy(e->buf, text, n);
	e->buf[n] = '\0';
	e->len = e->cur = n;
	e->scroll = 0;
}

int editor_insert(struct editor *e, const char *s, size_t n)
{
	if (e->len + n + 1 > e->cap)
		return -1;
	memmove(e->buf + e->cur + n, e->buf + e->cur, e->len - e->cur + 1);
	memcpy(e->buf + e->cur, s, n);
	e->len += n;
	e->cur += n;
	return 0;
}

int editor_insert_wchar(struct editor *e, unsigned cp)
{
	char s[4];
	size_t n;
	if (cp < 0x20 || cp == 0x7f || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
		return -1;
	if (cp < 0x80) {
		s[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		s[0] = (char)(0xC0 | cp >> 6);
		s[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		s[0] = (char)(0xE0 | cp >> 12);
		s[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		s[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		s[0] = (char)(0xF0 | cp >> 18);
		s[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		s[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		s[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return editor_insert(e, s, n);
}

static size_t prev_char(const struct editor *e, size_t i)
{
	if (i == 0)
		return 0;
	i--;
	while (i > 0 && is_cont((unsigned char)e->buf[i]))
		i--;
	return i;
}

static size_t next_char(const struct editor *e, size_t i)
{
	if (i >= e->len)
		return e->len;
	i++;
	while (i < e->len && is_cont((unsigned char)e->buf[i]))
		i++;
	return i;
}

static int is_word(unsigned char c)
{
	/* Any non-ASCII byte counts as part of a word. */
	return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       c == '\'';
}

void editor_left(struct editor *e)
{
	e->cur = prev_char(e, e->cur);
}

void editor_right(struct editor *e)
{
	e->cur = next_char(e, e->cur);
}

void editor_home(struct editor *e)
{
	e->cur = 0;
}

void editor_end(struct editor *e)
{
	e->cur = e->len;
}

static size_t word_start_before(const struct editor *e, size_t i)
{
	while (i > 0 && !is_word((unsigned char)e->buf[prev_char(e, i)]))
		i = prev_char(e, i);
	while (i > 0 && is_word((unsigned char)e->buf[prev_char(e, i)]))
		i = prev_char(e, i);
	return i;
}

void editor_word_left(struct editor *e)
{
	e->cur = word_start_before(e, e->cur);
}

void editor_word_right(struct editor *e)
{
	size_t i = e->cur;
	while (i < e->len && !is_word((unsigned char)e->buf[i]))
		i = next_char(e, i);
	while (i < e->len && is_word((unsigned char)e->buf[i]))
		i = next_char(e, i);
	e->cur = i;
}

static void cut(struct editor *e, size_t from, size_t to)
{
	if (to <= from)
		return;
	memmove(e->buf + from, e->buf + to, e->len - to + 1);
	e->len -= to - from;
	e->cur = from;
}

void editor_backspace(struct editor *e)
{
	cut(e, prev_char(e, e->cur), e->cur);
}

void editor_delete(struct editor *e)
{
	size_t c = e->cur;
	cut(e, c, next_char(e, c));
	e->cur = c;
}

void editor_kill_end(struct editor *e)
{
	size_t c = e->cur;
	cut(e, c, e->len);
	e->cur = c;
}

void editor_kill_start(struct editor *e)
{
	cut(e, 0, e->cur);
}

void editor_kill_word(struct editor *e)
{
	cut(e, word_start_before(e, e->cur), e->cur);
}

int editor_width(const char *s, size_t from, size_t to)
{
	mbstate_t st;
	memset(&st, 0, sizeof st);
	int w = 0;
	size_t i = from;
	while (i < to) {
		wchar_t wc;
		size_t n = mbrtowc(&wc, s + i, to - i, &st);
		if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
			memset(&st, 0, sizeof st);
			i++;
			w++;
			continue;
		}
		int cw = wcwidth(wc);
		w += cw < 0 ? 1 : cw;
		i += n;
	}
	return w;
}

int editor_view(struct editor *e, int cols)
{
	if (cols < 2)
		cols = 2;
	if (e->scroll > e->cur)
		e->scroll = e->cur;
	/* Keep a little context to the left when scrolling back. */
	while (e->scroll > 0 && editor_width(e->buf, e->scroll, e->cur) < cols / 4)
		e->scroll = prev_char(e, e->scroll);
	while (editor_width(e->buf, e->scroll, e->cur) > cols - 1)
		e->scroll = next_char(e, e->scroll);
	return editor_width(e->buf, e->scroll, e->cur);
}
