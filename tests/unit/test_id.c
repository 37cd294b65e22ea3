/*
 * Identifiers and checked numbers: the one parser of each refuses the
 * same things everywhere (leading zeros, signs, blanks, overflow).
 */
#include <math.h>
#include <string.h>

#include <criterion/criterion.h>

#include <tether/err.h>
#include <tether/id.h>
#include <tether/num.h>

Test(id, tickets)
{
	static const char *const bad[] = {"",
					  "T-",
					  "T-0",
					  "T-007",
					  "T-+5",
					  "T- 5",
					  "T-5 ",
					  "T--5",
					  "T5",
					  "X-5",
					  "T-5x",
					  "T-9223372036854775808",
					  "T-99999999999999999999",
					  "5",
					  NULL};
	char buf[TETHER_ID_TICKET_LEN];
	int64_t id;
	size_t i;

	cr_assert_eq(tether_id_ticket_parse("T-5", &id), 0);
	cr_assert_eq(id, 5);
	cr_assert_eq(tether_id_ticket_parse("t-12", &id), 0);
	cr_assert_eq(id, 12);
	cr_assert_eq(tether_id_ticket_parse("T-9223372036854775807", &id), 0);
	cr_assert_eq(id, INT64_MAX);
	for (i = 0; bad[i] != NULL; i++) {
		id = 7;
		cr_assert_eq(tether_id_ticket_parse(bad[i], &id),
			     TETHER_ERR_FORMAT, "%s", bad[i]);
		cr_assert_eq(id, 0);
	}
	cr_assert_eq(tether_id_ticket_parse(NULL, &id), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_id_ticket_parse_arg("5", &id), 0);
	cr_assert_eq(id, 5);
	cr_assert_eq(tether_id_ticket_parse_arg("05", &id), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_id_ticket_parse_arg("+5", &id), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_id_ticket_format(INT64_MAX, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "T-9223372036854775807");
	cr_assert_eq(tether_id_ticket_format(0, buf, sizeof(buf)),
		     TETHER_ERR_INVALID);
	cr_assert_eq(tether_id_ticket_format(123, buf, 5),
		     TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_id_ticket_format(123, buf, 6), 0);
	cr_assert_str_eq(buf, "T-123");
}

Test(id, names)
{
	char name[TETHER_ID_NAME_MAX + 2];

	cr_assert(tether_id_name_valid("web-01.example_x"));
	cr_assert(!tether_id_name_valid(""));
	cr_assert(!tether_id_name_valid(NULL));
	cr_assert(!tether_id_name_valid("a b"));
	cr_assert(!tether_id_name_valid("a/b"));
	cr_assert(!tether_id_name_valid("caf\xc3\xa9"));
	memset(name, 'a', TETHER_ID_NAME_MAX);
	name[TETHER_ID_NAME_MAX] = '\0';
	cr_assert(tether_id_name_valid(name));
	name[TETHER_ID_NAME_MAX] = 'a';
	name[TETHER_ID_NAME_MAX + 1] = '\0';
	cr_assert(!tether_id_name_valid(name));
}

Test(id, labels)
{
	char key[TETHER_ID_NAME_MAX + 1];
	const char *value, *why;

	cr_assert_eq(
	    tether_id_label_parse("env=prod 2", key, sizeof(key), &value, &why),
	    0);
	cr_assert_str_eq(key, "env");
	cr_assert_str_eq(value, "prod 2");
	cr_assert_eq(
	    tether_id_label_parse("env=", key, sizeof(key), &value, &why), 0);
	cr_assert_str_eq(value, "");
	cr_assert_eq(
	    tether_id_label_parse("env", key, sizeof(key), &value, &why),
	    TETHER_ERR_FORMAT);
	cr_assert_str_eq(why, "want KEY=VALUE");
	cr_assert_eq(
	    tether_id_label_parse("=x", key, sizeof(key), &value, &why),
	    TETHER_ERR_FORMAT);
	cr_assert_str_eq(why, "want KEY=VALUE", "\"=x\": %s", why);
	cr_assert_eq(
	    tether_id_label_parse("a b=x", key, sizeof(key), &value, &why),
	    TETHER_ERR_FORMAT);
	cr_assert(strstr(why, "label key") != NULL);
	cr_assert_eq(
	    tether_id_label_parse("a=x\ty", key, sizeof(key), &value, &why),
	    TETHER_ERR_FORMAT);
	cr_assert(strstr(why, "control") != NULL);
	cr_assert_null(value);
}

Test(id, fingerprints)
{
	cr_assert(tether_id_fingerprint_valid(
	    "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"));
	/* 43 characters, but the last one carries bits 32 bytes have not. */
	cr_assert(!tether_id_fingerprint_valid(
	    "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV"));
	cr_assert(!tether_id_fingerprint_valid(
	    "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuF"));
	cr_assert(!tether_id_fingerprint_valid(
	    "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFUA"));
	cr_assert(!tether_id_fingerprint_valid(
	    "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSu=U"));
	cr_assert(!tether_id_fingerprint_valid(
	    "sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"));
	cr_assert(!tether_id_fingerprint_valid("SHA256:"));
	cr_assert(!tether_id_fingerprint_valid(NULL));
}

Test(num, whole_numbers)
{
	uint64_t u = 9;
	int64_t i = 9;

	cr_assert_eq(tether_num_parse_u64("0", 0, 10, &u), 0);
	cr_assert_eq(u, 0);
	cr_assert_eq(
	    tether_num_parse_u64("18446744073709551615", 0, UINT64_MAX, &u), 0);
	cr_assert_eq(u, UINT64_MAX);
	u = 9;
	cr_assert_eq(
	    tether_num_parse_u64("18446744073709551616", 0, UINT64_MAX, &u),
	    TETHER_ERR_TOO_LARGE);
	cr_assert_eq(u, 9);
	cr_assert_eq(tether_num_parse_u64("11", 0, 10, &u),
		     TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_num_parse_u64("01", 0, 10, &u), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_num_parse_u64("+1", 0, 10, &u), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_num_parse_u64(" 1", 0, 10, &u), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_num_parse_u64("1 ", 0, 10, &u), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_num_parse_u64("", 0, 10, &u), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_num_parse_u64("-1", 0, 10, &u), TETHER_ERR_FORMAT);
	/* Not a number at all, however long (found by fuzz_code). */
	cr_assert_eq(
	    tether_num_parse_u64("99999999999999999999x", 0, UINT64_MAX, &u),
	    TETHER_ERR_FORMAT);
	cr_assert_eq(tether_num_parse_i64("-99999999999999999999-", INT64_MIN,
					  INT64_MAX, &i),
		     TETHER_ERR_FORMAT);
	cr_assert_eq(u, 9);
	cr_assert_eq(tether_num_parse_i64("-9223372036854775808", INT64_MIN,
					  INT64_MAX, &i),
		     0);
	cr_assert_eq(i, INT64_MIN);
	cr_assert_eq(tether_num_parse_i64("-9223372036854775809", INT64_MIN,
					  INT64_MAX, &i),
		     TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_num_parse_i64("-0", -5, 5, &i), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_num_parse_i64("-5", -5, 5, &i), 0);
	cr_assert_eq(i, -5);
	cr_assert_eq(tether_num_parse_i64("-6", -5, 5, &i),
		     TETHER_ERR_TOO_LARGE);
}

Test(num, scanning)
{
	const char *p = "  0042 17\tx", *start;
	uint64_t u = 0;
	int64_t i = 0;

	cr_assert_eq(tether_num_scan_u64(&p, &u), 0);
	cr_assert_eq(u, 42);
	cr_assert_eq(tether_num_scan_u64(&p, &u), 0);
	cr_assert_eq(u, 17);
	start = p;
	cr_assert_eq(tether_num_scan_u64(&p, &u), TETHER_ERR_FORMAT);
	cr_assert_eq(p, start);
	cr_assert_eq(u, 17);
	p = "99999999999999999999";
	cr_assert_eq(tether_num_scan_u64(&p, &u), TETHER_ERR_TOO_LARGE);
	p = " -12:";
	cr_assert_eq(tether_num_scan_i64(&p, &i), 0);
	cr_assert_eq(i, -12);
	cr_assert_eq(*p, ':');
	/* Blanks go before the sign, not after it (found by fuzz_code). */
	p = "- 5";
	start = p;
	cr_assert_eq(tether_num_scan_i64(&p, &i), TETHER_ERR_FORMAT);
	cr_assert_eq(p, start);
	cr_assert_eq(i, -12);
	p = "-\t5";
	cr_assert_eq(tether_num_scan_i64(&p, &i), TETHER_ERR_FORMAT);
	p = "7f3a-";
	cr_assert_eq(tether_num_scan_hex(&p, &u), 0);
	cr_assert_eq(u, 0x7f3a);
	cr_assert_eq(*p, '-');
}

Test(num, doubles)
{
	double v = 0;

	cr_assert_eq(tether_num_parse_double("1.5", 3, &v), 0);
	cr_assert_eq(v, 1.5);
	cr_assert_eq(tether_num_parse_double("-2e3xyz", 4, &v), 0);
	cr_assert_eq(v, -2000);
	cr_assert_eq(tether_num_parse_double("inf", 3, &v), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_num_parse_double("nan", 3, &v), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_num_parse_double("0x10", 4, &v), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_num_parse_double(" 1", 2, &v), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_num_parse_double("1e999", 5, &v),
		     TETHER_ERR_FORMAT);
	cr_assert_eq(tether_num_parse_double("", 0, &v), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_num_parse_double(".", 1, &v), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_num_parse_double("1.2.3", 5, &v),
		     TETHER_ERR_FORMAT);
}
