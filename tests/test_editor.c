/* test_editor.c - the prompt editor: UTF-8 movement, readline kills, scrolling. */
#include "autoconfig.h"

#include <locale.h>
#include <string.h>

#include "tests/tap.h"
#include "ui/editor.h"

int main(void)
{
	setlocale(LC_ALL, "C.UTF-8");
	char buf[64] = "";
	struct editor e;
	editor_init(&e, buf, sizeof buf);
	editor_insert(&e, "calm piano", 10);
	tap_ok(!strcmp(buf, "calm piano") && e.cur == 10, "insert");
	editor_word_left(&e);
	tap_ok(e.cur == 5, "Alt-B to the start of the word (%zu)", e.cur);
	editor_insert_wchar(&e, 0x266B); /* ♫ (3 bytes) */
	editor_insert_wchar(&e, ' ');
	tap_ok(!strcmp(buf, "calm \xe2\x99\xab piano") && e.cur == 9, "insert a 3-byte character");
	editor_left(&e);
	editor_left(&e);
	tap_ok(e.cur == 5, "Left steps over a whole character (%zu)", e.cur);
	editor_delete(&e);
	tap_ok(!strcmp(buf, "calm  piano"), "Delete removes the whole character");
	editor_end(&e);
	editor_kill_word(&e);
	tap_ok(!strcmp(buf, "calm  "), "Ctrl-W kills the word before the cursor ('%s')", buf);
	editor_home(&e);
	editor_word_right(&e);
	tap_ok(e.cur == 4, "Alt-F to the end of the word");
	editor_kill_end(&e);
	tap_ok(!strcmp(buf, "calm") && e.cur == 4, "Ctrl-K");
	editor_left(&e);
	editor_kill_start(&e);
	tap_ok(!strcmp(buf, "m") && e.cur == 0, "Ctrl-U");
	editor_set(&e, "");
	editor_backspace(&e);
	editor_delete(&e);
	tap_ok(e.len == 0 && e.cur == 0, "deleting in an empty line is harmless");
	tap_ok(editor_insert_wchar(&e, 7) != 0 && e.len == 0, "control characters are refused");

	/* Full buffer: refuses instead of overflowing or cutting a character. */
	editor_set(&e, "");
	int refused = 0;
	for (int i = 0; i < 40; i++)
		if (editor_insert_wchar(&e, 0x00E9) != 0)
			refused++;
	tap_ok(refused > 0 && e.len <= sizeof buf - 1 && e.len % 2 == 0, "full buffer refuses (%zu bytes)", e.len);
	char longtext[200];
	memset(longtext, 'a', sizeof longtext - 1);
	longtext[sizeof longtext - 1] = '\0';
	memcpy(longtext + 62, "\xc3\xa9", 2);
	editor_set(&e, longtext);
	tap_ok(e.len == 62, "editor_set never cuts a character (%zu)", e.len);

	/* Scrolling keeps the cursor inside the field. */
	char big[256] = "";
	struct editor v;
	editor_init(&v, big, sizeof big);
	for (int i = 0; i < 100; i++)
		editor_insert_wchar(&v, 'a' + i % 26);
	int col = editor_view(&v, 20);
	tap_ok(col <= 19 && v.scroll > 0, "scrolled to the cursor at the end (col %d)", col);
	editor_home(&v);
	col = editor_view(&v, 20);
	tap_ok(col == 0 && v.scroll == 0, "scrolls back at Home");
	editor_set(&v, "\xe4\xbd\xa0\xe5\xa5\xbd"); /* two double-width characters */
	tap_ok(editor_width(v.buf, 0, v.len) == 4, "wide characters count two columns");
	return tap_done();
}
