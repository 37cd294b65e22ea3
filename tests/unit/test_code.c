/*
 * Session code tests: generated codes parse back, typed variations
 * normalise to the one SPAKE2 password, malformed codes are refused with a
 * reason, and the word list keeps its promises.
 */
#include <stdbool.h>
#include <string.h>

#include <criterion/criterion.h>

#include <tether/code.h>
#include <tether/err.h>

static int parse(const char *code, char out[TETHER_CODE_MAX],
		 char np[TETHER_CODE_NAMEPLATE_MAX + 1], const char **why)
{
	return tether_code_parse(code, out, TETHER_CODE_MAX, np,
				 TETHER_CODE_NAMEPLATE_MAX + 1, why);
}

static void expect_bad(const char *code, const char *why_want)
{
	char out[TETHER_CODE_MAX], np[TETHER_CODE_NAMEPLATE_MAX + 1];
	const char *why = NULL;

	cr_assert_eq(parse(code, out, np, &why), TETHER_ERR_FORMAT,
		     "accepted \"%s\"", code);
	cr_assert_not_null(why);
	cr_assert_str_eq(why, why_want, "\"%s\": %s", code, why);
}

Test(code, generate_parses_back)
{
	char code[TETHER_CODE_MAX], out[TETHER_CODE_MAX];
	char np[TETHER_CODE_NAMEPLATE_MAX + 1];
	const char *why = "unset";
	int i;

	for (i = 0; i < 100; i++) {
		cr_assert_eq(tether_code_generate("4021", code, sizeof(code)),
			     0);
		cr_assert_eq(strncmp(code, "4021-", 5), 0);
		cr_assert_eq(parse(code, out, np, &why), 0, "%s", code);
		cr_assert_null(why);
		cr_assert_str_eq(out, code);
		cr_assert_str_eq(np, "4021");
	}
}

Test(code, generate_has_the_right_shape)
{
	char code[TETHER_CODE_MAX];
	const char *p;
	int dashes = 0;

	cr_assert_eq(tether_code_generate("7", code, sizeof(code)), 0);
	for (p = code; *p; p++) {
		if (*p == '-')
			dashes++;
		else if (p != code)
			cr_assert(*p >= 'a' && *p <= 'z', "%s", code);
	}
	cr_assert_eq(dashes, TETHER_CODE_WORDS);
}

Test(code, generate_varies)
{
	char a[TETHER_CODE_MAX], b[TETHER_CODE_MAX];
	int i, same = 0;

	/* 24 bits per code: ten collisions in a row means no randomness. */
	for (i = 0; i < 10; i++) {
		cr_assert_eq(tether_code_generate("9", a, sizeof(a)), 0);
		cr_assert_eq(tether_code_generate("9", b, sizeof(b)), 0);
		same += strcmp(a, b) == 0;
	}
	cr_assert_lt(same, 10);
}

Test(code, generate_checks_arguments)
{
	char code[TETHER_CODE_MAX];

	cr_assert_eq(tether_code_generate("07", code, sizeof(code)),
		     TETHER_ERR_INVALID);
	cr_assert_eq(tether_code_generate("", code, sizeof(code)),
		     TETHER_ERR_INVALID);
	cr_assert_eq(tether_code_generate(NULL, code, sizeof(code)),
		     TETHER_ERR_INVALID);
	/* "12345678-" plus three words never fits in 10 bytes. */
	cr_assert_eq(tether_code_generate("12345678", code, 10),
		     TETHER_ERR_TOO_LARGE);
}

Test(code, normalises_typed_code)
{
	static const char *const typed[] = {
	    "  7 Orbit TANGO lumen ",	"7-orbit-tango-lumen",
	    "7 orbit tango lumen",	"\t7-ORBIT-Tango-LuMeN\n",
	    "7   orbit - tango -lumen", "7- orbit  tango\tlumen",
	};
	char out[TETHER_CODE_MAX], np[TETHER_CODE_NAMEPLATE_MAX + 1];
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(typed) / sizeof(typed[0]); i++) {
		cr_assert_eq(parse(typed[i], out, np, &why), 0, "\"%s\": %s",
			     typed[i], why ? why : "");
		cr_assert_str_eq(out, "7-orbit-tango-lumen");
		cr_assert_str_eq(np, "7");
	}
}

Test(code, wrong_word_count)
{
	static const char shape[] = "code must look like 7-word-word-word";

	expect_bad("7-orbit-tango", shape);
	expect_bad("7-orbit-tango-lumen-zebra", shape);
	expect_bad("7", shape);
	expect_bad("7-orbit--tango-lumen", shape);
	expect_bad("7-orbit-tango-lumen-", shape);
	expect_bad("-7-orbit-tango-lumen", shape);
	expect_bad("7 - - orbit tango lumen", shape);
}

Test(code, unknown_word)
{
	static const char word[] = "unknown word in code";

	expect_bad("7-orbit-tango-lumens", word);
	expect_bad("7-orbit-tang-lumen", word);
	expect_bad("7-orbit-tango-k0ala", word);
	expect_bad("7-orbit-tango-verylongword", word);
	expect_bad("7-orbit-tango-\xc3\xa9t\xc3\xa9", word);
	expect_bad("7-orbit-tango-abc", word);
}

Test(code, bad_nameplate)
{
	static const char np[] = "bad nameplate in code";

	expect_bad("07-orbit-tango-lumen", np);
	expect_bad("0-orbit-tango-lumen", np);
	expect_bad("7a-orbit-tango-lumen", np);
	expect_bad("seven-orbit-tango-lumen", np);
	expect_bad("123456789-orbit-tango-lumen", np);
}

Test(code, empty)
{
	expect_bad("", "empty code");
	expect_bad("   \t\n", "empty code");
}

Test(code, checks_buffer_sizes)
{
	char out[TETHER_CODE_MAX], np[TETHER_CODE_NAMEPLATE_MAX + 1];
	const char *why;

	/* "7-orbit-tango-lumen" is 19 characters plus the NUL. */
	cr_assert_eq(tether_code_parse("7-orbit-tango-lumen", out, 19, np,
				       sizeof(np), &why),
		     TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_code_parse("7-orbit-tango-lumen", out, 20, np,
				       sizeof(np), &why),
		     0);
	cr_assert_eq(tether_code_parse("12-orbit-tango-lumen", out, sizeof(out),
				       np, 2, &why),
		     TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_code_parse("12-orbit-tango-lumen", out, sizeof(out),
				       np, 3, &why),
		     0);
	cr_assert_str_eq(np, "12");
}

Test(code, why_may_be_null)
{
	char out[TETHER_CODE_MAX], np[TETHER_CODE_NAMEPLATE_MAX + 1];

	cr_assert_eq(tether_code_parse("nonsense", out, sizeof(out), np,
				       sizeof(np), NULL),
		     TETHER_ERR_FORMAT);
}

Test(code, nameplate_valid)
{
	cr_assert(tether_code_nameplate_valid("1"));
	cr_assert(tether_code_nameplate_valid("12345678"));
	cr_assert(tether_code_nameplate_valid("90"));
	cr_assert_not(tether_code_nameplate_valid(""));
	cr_assert_not(tether_code_nameplate_valid("0"));
	cr_assert_not(tether_code_nameplate_valid("012"));
	cr_assert_not(tether_code_nameplate_valid("123456789"));
	cr_assert_not(tether_code_nameplate_valid("12a"));
	cr_assert_not(tether_code_nameplate_valid("-1"));
	cr_assert_not(tether_code_nameplate_valid(" 1"));
	cr_assert_not(tether_code_nameplate_valid(NULL));
}

Test(code, wordlist_is_well_formed)
{
	unsigned i, j;

	cr_assert_null(tether_code_word(TETHER_CODE_WORDLIST_LEN));
	for (i = 0; i < TETHER_CODE_WORDLIST_LEN; i++) {
		const char *w = tether_code_word(i);
		size_t len, k;

		cr_assert_not_null(w);
		len = strlen(w);
		cr_assert(len >= 4 && len <= 6, "\"%s\" length", w);
		for (k = 0; k < len; k++)
			cr_assert(w[k] >= 'a' && w[k] <= 'z', "\"%s\"", w);
		for (j = 0; j < i; j++) {
			const char *v = tether_code_word(j);

			cr_assert_str_neq(v, w, "\"%s\" twice", w);
			/* No word is a prefix of another. */
			cr_assert_neq(strncmp(v, w, strlen(v)), 0,
				      "\"%s\" starts \"%s\"", v, w);
			cr_assert_neq(strncmp(w, v, len), 0,
				      "\"%s\" starts \"%s\"", w, v);
		}
	}
}

Test(code, every_word_parses)
{
	char code[64], out[TETHER_CODE_MAX];
	char np[TETHER_CODE_NAMEPLATE_MAX + 1];
	const char *why;
	unsigned i;

	for (i = 0; i < TETHER_CODE_WORDLIST_LEN; i++) {
		const char *w = tether_code_word(i);
		size_t len = strlen(w);

		memcpy(code, "5-", 2);
		memcpy(code + 2, w, len);
		memcpy(code + 2 + len, "-orbit-", 7);
		memcpy(code + 9 + len, w, len + 1);
		cr_assert_eq(parse(code, out, np, &why), 0, "%s", code);
		cr_assert_str_eq(out, code);
	}
}

Test(code, parse_in_place)
{
	char buf[TETHER_CODE_MAX] = "   42 ORBIT tango  Lumen";
	char np[TETHER_CODE_NAMEPLATE_MAX + 1];
	const char *why;

	cr_assert_eq(
	    tether_code_parse(buf, buf, sizeof(buf), np, sizeof(np), &why), 0);
	cr_assert_str_eq(buf, "42-orbit-tango-lumen");
	cr_assert_str_eq(np, "42");
}
