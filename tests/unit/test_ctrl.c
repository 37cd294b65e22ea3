/*
 * The control-message codec: every message type and answer decoded from
 * its wire form and encoded back to the same JSON, unknown members, wrong
 * types, lengths and ranges refused with a reason, clipping where the
 * schema clips, every prefix of a message refused, and every allocation
 * failed in turn without a crash or a leak.
 */
#include <math.h>
#include <string.h>

#include <criterion/criterion.h>

#include <tether/alloc.h>
#include <tether/ctrl.h>
#include <tether/err.h>

#define HEX32 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define HEX64 HEX32 HEX32
#define HEX65 HEX64 "01"
#define FP "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"

struct sample {
	unsigned dirs;
	const char *json;
};

/* One canonical wire form per message type (members in schema order). */
static const struct sample samples[] = {
    {TETHER_CTRL_C2R, "{\"t\":\"ping\"}"},
    {TETHER_CTRL_R2A, "{\"t\":\"pong\"}"},
    {TETHER_CTRL_C2R, "{\"t\":\"hello\",\"role\":\"console\",\"version\":1,"
		      "\"token\":\"tt_1_abc\",\"pubkey\":\"" HEX32 "\"}"},
    {TETHER_CTRL_C2R, "{\"t\":\"hello\",\"role\":\"console\",\"version\":1,"
		      "\"technician\":\"alice\"}"},
    {TETHER_CTRL_A2R, "{\"t\":\"hello\",\"role\":\"agent\",\"version\":1}"},
    {TETHER_CTRL_R2C,
     "{\"t\":\"welcome\",\"version\":1,\"challenge\":\"" HEX32 "\"}"},
    {TETHER_CTRL_C2R, "{\"t\":\"auth\",\"sig\":\"" HEX64 "\"}"},
    {TETHER_CTRL_R2C,
     "{\"t\":\"auth_ok\",\"technician\":\"alice\",\"role\":\"admin\"}"},
    {TETHER_CTRL_R2A,
     "{\"t\":\"welcome\",\"version\":1,\"challenge\":\"" HEX32 "\"}"},
    {TETHER_CTRL_R2C, "{\"t\":\"err\",\"id\":3,\"code\":\"no_agent\","
		      "\"message\":\"no agent has joined T-1 yet\"}"},
    {TETHER_CTRL_C2R, "{\"t\":\"ticket_new\",\"id\":1,\"title\":\"Outlook\","
		      "\"customer\":\"ACME / Jo\"}"},
    {TETHER_CTRL_C2R, "{\"t\":\"ticket_list\",\"id\":2,\"status\":\"open\"}"},
    {TETHER_CTRL_C2R, "{\"t\":\"ticket_list\",\"id\":2}"},
    {TETHER_CTRL_C2R,
     "{\"t\":\"ticket_list\",\"id\":2,\"status\":\"closed\",\"source\":"
     "\"health\",\"customer\":\"ACME\",\"search\":\"50%\",\"limit\":500,"
     "\"before\":\"T-113\"}"},
    {TETHER_CTRL_C2R, "{\"t\":\"ticket_list\",\"id\":2,\"assignee\":\"me\"}"},
    {TETHER_CTRL_C2R, "{\"t\":\"ticket_list\",\"id\":2,\"assignee_me\":true}"},
    {TETHER_CTRL_C2R, "{\"t\":\"ticket_list\",\"id\":2,\"unassigned\":true}"},
    {TETHER_CTRL_C2R, "{\"t\":\"ticket_show\",\"id\":9,\"ticket\":\"T-12\"}"},
    {TETHER_CTRL_C2R, "{\"t\":\"ticket_show\",\"id\":9,\"ticket\":\"T-12\","
		      "\"limit\":10,\"before\":4000}"},
    {TETHER_CTRL_C2R, "{\"t\":\"ticket_show\",\"id\":9,\"ticket\":\"T-12\","
		      "\"limit\":500,\"after\":17}"},
    {TETHER_CTRL_C2R, "{\"t\":\"comment\",\"id\":9,\"ticket\":"
		      "\"T-12\",\"text\":\"called back, no answer\"}"},
    {TETHER_CTRL_C2R, "{\"t\":\"ticket_reopen\",\"id\":9,\"ticket\":\"T-12\"}"},
    {TETHER_CTRL_C2R, "{\"t\":\"ticket_close\",\"id\":4,\"ticket\":\"T-1\","
		      "\"resolution\":\"fixed\"}"},
    {TETHER_CTRL_C2R,
     "{\"t\":\"invite\",\"id\":5,\"ticket\":\"T-1\","
     "\"expires\":600,\"info\":\"{}\",\"pake\":\"" HEX65 "\"}"},
    {TETHER_CTRL_C2R, "{\"t\":\"attach\",\"id\":6,\"ticket\":\"T-1\"}"},
    {TETHER_CTRL_C2R,
     "{\"t\":\"confirm\",\"id\":7,\"session\":3,\"conf\":\"" HEX32
     "\",\"info\":\"" HEX32 "\"}"},
    {TETHER_CTRL_C2R, "{\"t\":\"pake_failed\",\"id\":8,\"session\":3}"},
    {TETHER_CTRL_C2R, "{\"t\":\"open\",\"id\":9,\"session\":3,\"kind\":"
		      "\"shell\",\"nonce\":\"" HEX32 "\"}"},
    {TETHER_CTRL_C2R, "{\"t\":\"close\",\"id\":10,\"channel\":4}"},
    {TETHER_CTRL_C2R, "{\"t\":\"agents\",\"id\":11}"},
    {TETHER_CTRL_C2R, "{\"t\":\"health\",\"id\":12,\"agent\":\"web-01\"}"},
    {TETHER_CTRL_C2R, "{\"t\":\"diag_attach\",\"id\":13,\"ticket\":\"T-2\","
		      "\"bundle\":\"eJyrrgUAAXUA+Q==\"}"},
    {TETHER_CTRL_C2R, "{\"t\":\"diag_get\",\"id\":14,\"ticket\":\"T-2\"}"},
    {TETHER_CTRL_C2R, "{\"t\":\"sessions\",\"id\":15}"},
    {TETHER_CTRL_R2C, "{\"t\":\"close\",\"channel\":4,\"reason\":\"agent "
		      "disconnected\"}"},
    {TETHER_CTRL_A2R, "{\"t\":\"close\",\"channel\":4}"},
    {TETHER_CTRL_A2R, "{\"t\":\"join\",\"nameplate\":\"7\",\"facts\":{"
		      "\"hostname\":\"pc\",\"os\":\"Debian\",\"user\":"
		      "\"jo\"}}"},
    {TETHER_CTRL_R2A, "{\"t\":\"join_ok\",\"session\":3,\"pake_a\":\"" HEX65
		      "\",\"expires_at\":1765000000,"
		      "\"nameplate\":\"7\"}"},
    {TETHER_CTRL_A2R,
     "{\"t\":\"pake\",\"pake_b\":\"" HEX65 "\",\"conf_b\":\"" HEX32 "\"}"},
    {TETHER_CTRL_R2A, "{\"t\":\"pake_ok\",\"resume\":\"" HEX32 "\"}"},
    {TETHER_CTRL_A2R, "{\"t\":\"decline\"}"},
    {TETHER_CTRL_A2R,
     "{\"t\":\"resume\",\"session\":3,\"token\":\"" HEX32 "\"}"},
    {TETHER_CTRL_R2A, "{\"t\":\"resume_ok\",\"state\":\"paired\"}"},
    {TETHER_CTRL_R2A,
     "{\"t\":\"confirm\",\"conf\":\"" HEX32 "\",\"info\":\"" HEX32 "\"}"},
    {TETHER_CTRL_A2R, "{\"t\":\"confirmed\",\"ok\":false,\"allowed\":[],"
		      "\"requested\":[]}"},
    {TETHER_CTRL_A2R, "{\"t\":\"confirmed\",\"ok\":true,\"allowed\":["
		      "\"exec\",\"diag\"],\"requested\":[\"exec\","
		      "\"shell\",\"diag\"]}"},
    {TETHER_CTRL_R2A, "{\"t\":\"open\",\"channel\":4,\"kind\":\"file\","
		      "\"nonce\":\"" HEX32 "\",\"technician\":\"alice\"}"},
    {TETHER_CTRL_A2R,
     "{\"t\":\"opened\",\"channel\":4,\"nonce\":\"" HEX32 "\"}"},
    {TETHER_CTRL_A2R, "{\"t\":\"open_failed\",\"channel\":4,\"reason\":"
		      "\"not allowed\"}"},
    {TETHER_CTRL_A2R, "{\"t\":\"xfer\",\"channel\":4,\"direction\":\"get\","
		      "\"path\":\"a/b\",\"type\":\"file\",\"size\":10,"
		      "\"sha256\":\"" HEX32 "\",\"offset\":0,\"sent\":10,"
		      "\"ms\":3,\"ok\":true,\"reason\":\"\"}"},
    {TETHER_CTRL_A2R, "{\"t\":\"xfer\",\"channel\":4,\"direction\":\"put\","
		      "\"path\":\"d\",\"type\":\"skip\",\"size\":0,"
		      "\"sha256\":\"\",\"offset\":0,\"sent\":0,\"ms\":0,"
		      "\"ok\":false,\"reason\":\"denied\"}"},
    {TETHER_CTRL_A2R, "{\"t\":\"forward\",\"channel\":5,\"host\":"
		      "\"127.0.0.1\",\"port\":22,\"ok\":true,\"reason\":"
		      "\"\"}"},
    {TETHER_CTRL_R2A, "{\"t\":\"ended\",\"reason\":\"ticket closed\"}"},
    {TETHER_CTRL_A2R, "{\"t\":\"leave\"}"},
    {TETHER_CTRL_A2R, "{\"t\":\"enroll\",\"token\":\"tte_x\",\"name\":"
		      "\"web-01\",\"pubkey\":\"" HEX32 "\",\"labels\":{"
		      "\"env\":\"prod\",\"rack\":\"b 2\"},\"facts\":{"
		      "\"hostname\":\"web-01\"}}"},
    {TETHER_CTRL_R2A, "{\"t\":\"enrolled\",\"agent\":\"web-01\"}"},
    {TETHER_CTRL_A2R,
     "{\"t\":\"auth\",\"agent\":\"web-01\",\"sig\":\"" HEX64 "\"}"},
    {TETHER_CTRL_R2A, "{\"t\":\"auth_ok\",\"acked\":17}"},
    {TETHER_CTRL_A2R,
     "{\"t\":\"check\",\"seq\":18,\"check\":\"root\",\"state\":"
     "\"CRITICAL\",\"type\":\"HARD\",\"attempt\":3,\"max_attempts\":3,"
     "\"output\":\"DISK CRITICAL\",\"perfdata\":[{\"label\":\"/\","
     "\"value\":95.5,\"uom\":\"%\",\"warn\":\"80\",\"crit\":\"90\","
     "\"min\":0,\"max\":100},{\"label\":\"x\",\"value\":null,\"uom\":"
     "\"\",\"warn\":null,\"crit\":null,\"min\":null,\"max\":null}],\"ts\":"
     "1765000000,\"duration_ms\":12,\"ticket_on\":\"warning\",\"dropped\":"
     "2}"},
    {TETHER_CTRL_R2A, "{\"t\":\"check_ack\",\"seq\":18}"},
    {TETHER_CTRL_R2A, "{\"t\":\"diag_request\",\"ticket\":\"T-3\"}"},
    {TETHER_CTRL_A2R,
     "{\"t\":\"diag\",\"ticket\":\"T-3\",\"bundle\":\"QQ==\"}"},
    {TETHER_CTRL_A2R, "{\"t\":\"diag\",\"ticket\":\"T-3\",\"error\":"
		      "\"timed out\"}"},
    {TETHER_CTRL_C2R, "{\"t\":\"ticket_assign\",\"id\":15,\"ticket\":"
		      "\"T-3\",\"to\":\"bob\",\"me\":false}"},
    {TETHER_CTRL_C2R, "{\"t\":\"ticket_assign\",\"id\":15,\"ticket\":"
		      "\"T-3\",\"to\":null,\"me\":true}"},
    {TETHER_CTRL_C2R, "{\"t\":\"technician_create\",\"id\":16,\"name\":"
		      "\"carol\",\"role\":\"auditor\"}"},
    {TETHER_CTRL_C2R,
     "{\"t\":\"technician_remove\",\"id\":17,\"name\":\"carol\"}"},
    {TETHER_CTRL_C2R, "{\"t\":\"technician_list\",\"id\":18}"},
    {TETHER_CTRL_C2R, "{\"t\":\"technician_role\",\"id\":19,\"name\":"
		      "\"carol\",\"role\":\"technician\"}"},
    {TETHER_CTRL_C2R, "{\"t\":\"enroll_token\",\"id\":20,\"ttl\":3600}"},
};

/* Decodes text in dirs, re-encodes it and compares the JSON. */
static void round_trip(unsigned dirs, const char *text)
{
	struct tether_ctrl_msg m;
	char why[TETHER_CTRL_WHY_MAX];
	json_t *want, *got;
	int r;

	r = tether_ctrl_decode(text, strlen(text), dirs, &m, why, sizeof(why));
	cr_assert_eq(r, 0, "%s: %s (%s)", text, tether_strerror(r), why);
	got = tether_ctrl_to_json(m.type, m.id, &m.body);
	want = json_loads(text, 0, NULL);
	cr_assert_not_null(got, "%s: does not encode again", text);
	cr_assert(json_equal(want, got), "%s came back as %s", text,
		  json_dumps(got, JSON_COMPACT));
	json_decref(want);
	json_decref(got);
	tether_ctrl_msg_free(&m);
}

Test(ctrl, every_message_round_trips)
{
	bool seen[TETHER_CTRL_TYPES] = {false};
	struct tether_ctrl_msg m;
	size_t i;

	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		round_trip(samples[i].dirs, samples[i].json);
		cr_assert_eq(tether_ctrl_decode(samples[i].json,
						strlen(samples[i].json),
						samples[i].dirs, &m, NULL, 0),
			     0);
		seen[m.type] = true;
		tether_ctrl_msg_free(&m);
	}
	for (i = 0; i < TETHER_CTRL_TYPES; i++)
		cr_assert(seen[i] || i == TETHER_CTRL_OK, "no sample of \"%s\"",
			  tether_ctrl_type_name(i));
}

/* The administration answers: a token shown once, roles as words. */
Test(ctrl, technician_answers)
{
	const char *add = "{\"t\":\"ok\",\"id\":16,\"technician\":{\"id\":4,"
			  "\"name\":\"carol\",\"role\":\"auditor\","
			  "\"created_at\":\"2026-12-07T15:54:05Z\"},"
			  "\"token\":\"tt_4_ab\"}";
	const char *role = "{\"t\":\"ok\",\"id\":19,\"technician\":{\"id\":4,"
			   "\"name\":\"carol\",\"role\":\"technician\","
			   "\"created_at\":null},\"from\":\"auditor\"}";
	const char *bad = "{\"t\":\"ok\",\"id\":19,\"technician\":{\"id\":4,"
			  "\"name\":\"carol\",\"role\":\"owner\","
			  "\"created_at\":null}}";
	struct tether_ctrl_msg m;
	json_t *back, *want;

	cr_assert_eq(
	    tether_ctrl_decode(add, strlen(add), TETHER_CTRL_R2C, &m, NULL, 0),
	    0);
	cr_assert_eq(
	    tether_ctrl_decode_answer(&m, TETHER_CTRL_TECH_ADD, NULL, 0), 0);
	cr_assert_eq(m.body.tech_add_ok.technician.role, TETHER_TECH_AUDITOR);
	cr_assert_str_eq(m.body.tech_add_ok.token, "tt_4_ab");
	back = tether_ctrl_answer_to_json(TETHER_CTRL_TECH_ADD, 16, &m.body);
	want = json_loads(add, 0, NULL);
	cr_assert(json_equal(back, want), "%s", json_dumps(back, 0));
	json_decref(back);
	json_decref(want);
	tether_ctrl_msg_free(&m);
	cr_assert_eq(tether_ctrl_decode(role, strlen(role), TETHER_CTRL_R2C, &m,
					NULL, 0),
		     0);
	cr_assert_eq(
	    tether_ctrl_decode_answer(&m, TETHER_CTRL_TECH_ROLE, NULL, 0), 0);
	cr_assert(m.body.tech_ok.has_from);
	cr_assert_eq(m.body.tech_ok.from, TETHER_TECH_AUDITOR);
	cr_assert_eq(m.body.tech_ok.technician.role, TETHER_TECH_TECHNICIAN);
	tether_ctrl_msg_free(&m);
	cr_assert_eq(
	    tether_ctrl_decode(bad, strlen(bad), TETHER_CTRL_R2C, &m, NULL, 0),
	    0);
	cr_assert_eq(
	    tether_ctrl_decode_answer(&m, TETHER_CTRL_TECH_ROLE, NULL, 0),
	    TETHER_ERR_FORMAT);
	tether_ctrl_msg_free(&m);
	cr_assert_str_eq(tether_ctrl_code_name(TETHER_CTRL_E_FORBIDDEN),
			 "forbidden");
}

Test(ctrl, wire_names_are_unique_per_direction)
{
	size_t i, j;

	for (i = 0; i < TETHER_CTRL_TYPES; i++) {
		cr_assert_neq(tether_ctrl_type_dirs(i), 0);
		for (j = i + 1; j < TETHER_CTRL_TYPES; j++)
			cr_assert((tether_ctrl_type_dirs(i) &
				   tether_ctrl_type_dirs(j)) == 0 ||
				      strcmp(tether_ctrl_type_name(i),
					     tether_ctrl_type_name(j)) != 0,
				  "\"%s\" twice in one direction",
				  tether_ctrl_type_name(i));
	}
}

/* Decoding fails with err, and why names want. */
static void refused(unsigned dirs, const char *text, int err, const char *want)
{
	struct tether_ctrl_msg m;
	char why[TETHER_CTRL_WHY_MAX];
	int r;

	r = tether_ctrl_decode(text, strlen(text), dirs, &m, why, sizeof(why));
	cr_assert_eq(r, err, "%s: got %s (%s)", text, tether_strerror(r), why);
	cr_assert(strstr(why, want) != NULL, "%s: reason \"%s\", want \"%s\"",
		  text, why, want);
	tether_ctrl_msg_free(&m);
}

Test(ctrl, same_wire_name_other_direction)
{
	struct tether_ctrl_msg m;
	const char *open_req = "{\"t\":\"open\",\"id\":9,\"session\":3,"
			       "\"kind\":\"exec\",\"nonce\":\"" HEX32 "\"}";

	cr_assert_eq(tether_ctrl_decode(open_req, strlen(open_req),
					TETHER_CTRL_C2R, &m, NULL, 0),
		     0);
	cr_assert_eq(m.type, TETHER_CTRL_OPEN);
	cr_assert_eq(m.body.open.kind, TETHER_KIND_EXEC);
	cr_assert_eq(m.body.open.nonce[1], 0x11);
	tether_ctrl_msg_free(&m);
	/* The relay's "open" to an agent has a channel and a technician. */
	refused(TETHER_CTRL_R2A, open_req, TETHER_ERR_PROTOCOL,
		"open: unknown member \"id\"");
}

Test(ctrl, refusals_say_why)
{
	refused(TETHER_CTRL_A2R, "nope", TETHER_ERR_PROTOCOL, "not JSON");
	refused(TETHER_CTRL_A2R, "[1]", TETHER_ERR_PROTOCOL, "not an object");
	refused(TETHER_CTRL_A2R, "{\"x\":1}", TETHER_ERR_PROTOCOL, "no type");
	refused(TETHER_CTRL_A2R, "{\"t\":\"frobnicate\"}", TETHER_ERR_NOT_FOUND,
		"unknown type \"frobnicate\"");
	/* A console request is not an agent message. */
	refused(TETHER_CTRL_A2R, "{\"t\":\"ticket_list\",\"id\":1}",
		TETHER_ERR_NOT_FOUND, "unknown type");
	refused(TETHER_CTRL_A2R, "{\"t\":\"ping\",\"x\":1}",
		TETHER_ERR_PROTOCOL, "ping: unknown member \"x\"");
	refused(TETHER_CTRL_A2R, "{\"t\":\"ping\",\"id\":1}",
		TETHER_ERR_PROTOCOL, "unknown member \"id\"");
	refused(TETHER_CTRL_C2R, "{\"t\":\"ticket_list\"}", TETHER_ERR_FORMAT,
		"ticket_list: no id");
	refused(TETHER_CTRL_C2R, "{\"t\":\"ticket_list\",\"id\":0}",
		TETHER_ERR_FORMAT, "no id");
	refused(TETHER_CTRL_A2R, "{\"t\":\"check\"}", TETHER_ERR_FORMAT,
		"check: member \"seq\" missing");
	refused(TETHER_CTRL_A2R, "{\"t\":\"confirmed\",\"ok\":1}",
		TETHER_ERR_FORMAT, "member \"ok\" is not a boolean");
	/* The ticket info reaches an agent only sealed, with confirm. */
	refused(TETHER_CTRL_R2A,
		"{\"t\":\"join_ok\",\"session\":3,\"pake_a\":\"" HEX65
		"\",\"info\":\"{}\",\"expires_at\":1,\"nameplate\":\"7\"}",
		TETHER_ERR_PROTOCOL, "join_ok: unknown member \"info\"");
	refused(TETHER_CTRL_R2A, "{\"t\":\"confirm\",\"conf\":\"" HEX32 "\"}",
		TETHER_ERR_FORMAT, "member \"info\" missing");
	refused(TETHER_CTRL_A2R,
		"{\"t\":\"confirmed\",\"ok\":true,\"allowed\":[\"\"]}",
		TETHER_ERR_FORMAT, "allowed");
	refused(TETHER_CTRL_A2R, "{\"t\":\"check_ack\",\"seq\":1}",
		TETHER_ERR_NOT_FOUND, "unknown type");
	refused(TETHER_CTRL_R2A, "{\"t\":\"check_ack\",\"seq\":0}",
		TETHER_ERR_FORMAT, "\"seq\" is out of range");
	refused(TETHER_CTRL_R2A, "{\"t\":\"check_ack\",\"seq\":1.5}",
		TETHER_ERR_FORMAT, "not an integer");
	refused(TETHER_CTRL_R2A, "{\"t\":\"diag_request\",\"ticket\":7}",
		TETHER_ERR_FORMAT, "not a ticket");
	refused(TETHER_CTRL_R2A,
		"{\"t\":\"diag_request\",\"ticket\":\"T-007\"}",
		TETHER_ERR_FORMAT, "not a ticket");
	refused(TETHER_CTRL_R2A, "{\"t\":\"diag_request\",\"ticket\":\"T-+5\"}",
		TETHER_ERR_FORMAT, "not a ticket");
	refused(
	    TETHER_CTRL_R2A,
	    "{\"t\":\"diag_request\",\"ticket\":\"T-99999999999999999999\"}",
	    TETHER_ERR_FORMAT, "not a ticket");
	refused(TETHER_CTRL_A2R,
		"{\"t\":\"opened\",\"channel\":1,\"nonce\":"
		"\"00\"}",
		TETHER_ERR_FORMAT, "not 32 bytes of hex");
	refused(TETHER_CTRL_A2R,
		"{\"t\":\"check\",\"seq\":1,\"check\":\"a b\","
		"\"state\":\"OK\",\"type\":\"HARD\","
		"\"attempt\":1,\"max_attempts\":1,\"ts\":1}",
		TETHER_ERR_FORMAT, "\"check\" is not a name");
	refused(TETHER_CTRL_A2R,
		"{\"t\":\"check\",\"seq\":1,\"check\":\"a\","
		"\"state\":\"FINE\",\"type\":\"HARD\","
		"\"attempt\":1,\"max_attempts\":1,\"ts\":1}",
		TETHER_ERR_FORMAT, "\"state\" is not one of its words");
	refused(TETHER_CTRL_A2R, "{\"t\":\"join\",\"nameplate\":\"07\"}",
		TETHER_ERR_FORMAT, "not a nameplate");
	refused(TETHER_CTRL_A2R,
		"{\"t\":\"join\",\"nameplate\":\"7\",\"facts\":"
		"{\"kernel\":\"x\"}}",
		TETHER_ERR_PROTOCOL, "unknown member \"kernel\"");
	refused(TETHER_CTRL_A2R,
		"{\"t\":\"enroll\",\"token\":\"x\",\"name\":"
		"\"a\",\"pubkey\":\"" HEX32 "\",\"labels\":"
		"{\"a b\":\"c\"}}",
		TETHER_ERR_FORMAT, "key that is not a name");
	refused(TETHER_CTRL_A2R,
		"{\"t\":\"enroll\",\"token\":\"x\",\"name\":"
		"\"a\",\"pubkey\":\"" HEX32 "\",\"labels\":"
		"{\"a\":\"c\\u0007\"}}",
		TETHER_ERR_FORMAT, "without control characters");
	refused(TETHER_CTRL_A2R,
		"{\"t\":\"hello\",\"role\":\"agent\",\"version\":1,"
		"\"role\":\"console\"}",
		TETHER_ERR_PROTOCOL, "duplicate member \"role\"");
	/* A key too long for jansson to quote is still called a duplicate. */
	refused(TETHER_CTRL_A2R,
		"{\"t\":\"hello\",\"role\":\"agent\",\"version\":1,"
		"\"a_rather_long_member_name\":1,"
		"\"a_rather_long_member_name\":2}",
		TETHER_ERR_PROTOCOL, "duplicate member");
	refused(TETHER_CTRL_C2R,
		"{\"t\":\"ticket_new\",\"id\":1,\"title\":\"\"}",
		TETHER_ERR_FORMAT, "\"title\" is empty");
}

Test(ctrl, type_known_even_when_a_member_fails)
{
	struct tether_ctrl_msg m;

	cr_assert_eq(tether_ctrl_decode("{\"t\":\"check\"}", 13,
					TETHER_CTRL_A2R, &m, NULL, 0),
		     TETHER_ERR_FORMAT);
	cr_assert_eq(m.type, TETHER_CTRL_CHECK);
	tether_ctrl_msg_free(&m);
	cr_assert_eq(tether_ctrl_decode("{}", 2, TETHER_CTRL_A2R, &m, NULL, 0),
		     TETHER_ERR_PROTOCOL);
	cr_assert_eq(m.type, TETHER_CTRL_TYPES);
}

Test(ctrl, long_reports_are_clipped_on_a_character)
{
	struct tether_ctrl_msg m;
	char text[16384], path[8192];
	size_t n = 0, i;

	/* 5000 bytes of two-byte characters: clipped, never mid-character. */
	for (i = 0; i < 2500; i++) {
		path[n++] = (char)0xc3;
		path[n++] = (char)0xa9;
	}
	path[n] = '\0';
	snprintf(text, sizeof(text),
		 "{\"t\":\"xfer\",\"channel\":4,\"direction\":\"get\","
		 "\"path\":\"%s\",\"type\":\"dir\",\"size\":0,\"sha256\":\"\","
		 "\"offset\":0,\"sent\":0,\"ms\":0,\"ok\":true}",
		 path);
	cr_assert_eq(tether_ctrl_decode(text, strlen(text), TETHER_CTRL_A2R, &m,
					NULL, 0),
		     0);
	n = strlen(m.body.xfer_report.path);
	cr_assert_leq(n, TETHER_CTRL_PATH_MAX);
	cr_assert_eq(n % 2, 0, "cut inside a character");
	cr_assert_eq(m.body.xfer_report.reason, NULL);
	cr_assert(!m.body.xfer_report.has_sha256);
	tether_ctrl_msg_free(&m);
}

Test(ctrl, check_defaults_and_perfdata)
{
	const char *text =
	    "{\"t\":\"check\",\"seq\":1,\"check\":\"a\",\"state\":"
	    "\"OK\",\"type\":\"SOFT\",\"attempt\":1,"
	    "\"max_attempts\":3,\"ts\":5,\"perfdata\":[{"
	    "\"label\":\"l\",\"value\":3,\"uom\":\"s\",\"warn\":"
	    "null,\"crit\":\"2:\",\"min\":null,\"max\":1.5}]}";
	struct tether_ctrl_msg m;
	const struct tether_ctrl_check *c = &m.body.check;

	cr_assert_eq(tether_ctrl_decode(text, strlen(text), TETHER_CTRL_A2R, &m,
					NULL, 0),
		     0);
	cr_assert_eq(c->ticket_on, TETHER_TICKET_ON_CRITICAL);
	cr_assert_eq(c->dropped, 0);
	cr_assert_eq(c->output, NULL);
	cr_assert_eq(c->nperfdata, 1);
	cr_assert_eq(c->perfdata[0].value, 3.0);
	cr_assert(isnan(c->perfdata[0].min));
	cr_assert_eq(c->perfdata[0].warn, NULL);
	cr_assert_str_eq(c->perfdata[0].crit, "2:");
	cr_assert_eq(c->perfdata[0].max, 1.5);
	tether_ctrl_msg_free(&m);
}

Test(ctrl, perfdata_beyond_the_cap_is_cut)
{
	char text[65536];
	struct tether_ctrl_msg m;
	size_t n, i;

	n = (size_t)snprintf(text, sizeof(text),
			     "{\"t\":\"check\",\"seq\":1,\"check\":\"a\","
			     "\"state\":\"OK\",\"type\":\"SOFT\",\"attempt\":1,"
			     "\"max_attempts\":3,\"ts\":5,\"perfdata\":[");
	for (i = 0; i < 200; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      "%s{\"label\":\"l%zu\",\"value\":1,"
				      "\"uom\":\"\"}",
				      i ? "," : "", i);
	snprintf(text + n, sizeof(text) - n, "]}");
	cr_assert_eq(tether_ctrl_decode(text, strlen(text), TETHER_CTRL_A2R, &m,
					NULL, 0),
		     0);
	cr_assert_eq(m.body.check.nperfdata, TETHER_CTRL_PERFDATA_MAX);
	tether_ctrl_msg_free(&m);
}

Test(ctrl, answers)
{
	const char *ok = "{\"t\":\"ok\",\"id\":5,\"ticket\":{\"id\":\"T-3\","
			 "\"title\":\"x\",\"customer\":null,\"status\":"
			 "\"closed\",\"source\":\"health\",\"created_at\":"
			 "\"2026-12-07T15:54:05Z\",\"closed_at\":null,"
			 "\"resolution\":null,\"created_by\":null,"
			 "\"assignee\":null,\"sessions\":"
			 "[{\"nameplate\":\"4\",\"state\":\"burned\","
			 "\"created_at\":\"2026-12-07T15:54:05Z\","
			 "\"expires_at\":null,\"agent\":null}],\"attachments\":"
			 "[],\"audit\":[{\"ts\":\"2026-12-07T15:54:06Z\","
			 "\"actor\":\"tech:alice\",\"event\":\"x\",\"detail\":"
			 "{\"a\":[1,2]}},{\"id\":8,\"ts\":null,\"actor\":"
			 "\"relay\",\"event\":\"y\",\"detail\":null}],"
			 "\"audit_more\":40,\"comments\":[{\"id\":2,\"by\":"
			 "\"alice\",\"at\":\"2026-12-07T15:54:07Z\",\"text\":"
			 "\"rebooted\"}],\"comments_more\":1}}";
	struct tether_ctrl_msg m;
	const struct tether_ctrl_ticket *t = &m.body.ticket_ok.ticket;
	json_t *back, *want;
	char why[TETHER_CTRL_WHY_MAX];

	cr_assert_eq(
	    tether_ctrl_decode(ok, strlen(ok), TETHER_CTRL_R2C, &m, NULL, 0),
	    0);
	cr_assert_eq(m.type, TETHER_CTRL_OK);
	cr_assert_eq(m.id, 5);
	cr_assert_eq(
	    tether_ctrl_decode_answer(&m, TETHER_CTRL_TICKET_SHOW, NULL, 0), 0);
	cr_assert_eq(t->id, 3);
	cr_assert_eq(t->status, TETHER_TICKET_CLOSED);
	cr_assert_eq(t->created_at, 1796658845);
	cr_assert(t->has_detail);
	cr_assert_eq(t->nsessions, 1);
	cr_assert_eq(t->sessions[0].state, TETHER_SESSION_BURNED);
	cr_assert(!t->sessions[0].has_agent);
	cr_assert_eq(t->naudit, 2);
	cr_assert(json_is_object(t->audit[0].detail));
	cr_assert_eq(t->audit[0].id, 0);
	cr_assert_eq(t->audit[1].id, 8);
	cr_assert_eq(t->audit_more, 40);
	cr_assert_eq(t->ncomments, 1);
	cr_assert_str_eq(t->comments[0].by, "alice");
	cr_assert_str_eq(t->comments[0].text, "rebooted");
	cr_assert_eq(t->comments_more, 1);
	back = tether_ctrl_answer_to_json(TETHER_CTRL_TICKET_SHOW, 5, &m.body);
	want = json_loads(ok, 0, NULL);
	cr_assert(json_equal(back, want), "%s", json_dumps(back, 0));
	json_decref(back);
	json_decref(want);
	/* The same "ok" is not a ticket list. */
	cr_assert_eq(tether_ctrl_decode_answer(&m, TETHER_CTRL_TICKET_LIST, why,
					       sizeof(why)),
		     TETHER_ERR_PROTOCOL);
	cr_assert(strstr(why, "ticket_list: unknown member \"ticket\"") != NULL,
		  "reason: %s", why);
	tether_ctrl_msg_free(&m);
}

/* The live sessions' answer: a row per session, channels by kind. */
Test(ctrl, sessions_answer)
{
	const char *ok =
	    "{\"t\":\"ok\",\"id\":2,\"sessions\":[{\"ticket\":\"T-4\","
	    "\"title\":\"printer\",\"technician\":\"alice\",\"nameplate\":"
	    "\"8\",\"state\":\"paired\",\"connected\":true,\"addr\":"
	    "\"127.0.0.1\",\"since\":\"2026-12-07T15:54:05Z\",\"agent\":{"
	    "\"hostname\":\"pc\"},\"channels\":[\"exec\",\"forward\"]},"
	    "{\"ticket\":\"T-5\",\"title\":\"x\",\"technician\":null,"
	    "\"nameplate\":\"9\",\"state\":\"joined\",\"connected\":false,"
	    "\"addr\":null,\"since\":null,\"agent\":null,\"channels\":[]}]}";
	const struct tether_ctrl_sessions_ok *s;
	struct tether_ctrl_msg m;
	json_t *back, *want;

	cr_assert_eq(
	    tether_ctrl_decode(ok, strlen(ok), TETHER_CTRL_R2C, &m, NULL, 0),
	    0);
	cr_assert_eq(
	    tether_ctrl_decode_answer(&m, TETHER_CTRL_SESSIONS, NULL, 0), 0);
	s = &m.body.sessions_ok;
	cr_assert_eq(s->nsessions, 2);
	cr_assert_eq(s->sessions[0].ticket, 4);
	cr_assert_eq(s->sessions[0].state, TETHER_SESSION_PAIRED);
	cr_assert(s->sessions[0].connected && s->sessions[0].has_agent);
	cr_assert_eq(s->sessions[0].nchannels, 2);
	cr_assert_str_eq(s->sessions[0].channels[1], "forward");
	cr_assert_null(s->sessions[1].technician);
	cr_assert(!s->sessions[1].has_agent);
	back = tether_ctrl_answer_to_json(TETHER_CTRL_SESSIONS, 2, &m.body);
	want = json_loads(ok, 0, NULL);
	cr_assert(json_equal(back, want), "%s", json_dumps(back, 0));
	json_decref(back);
	json_decref(want);
	tether_ctrl_msg_free(&m);
}

/*
 * An invite's answer says when the ticket's previous code was burned,
 * and only then: without it the answer reads as it always has.
 */
Test(ctrl, invite_answer_tells_of_a_burned_code)
{
	const char *burned =
	    "{\"t\":\"ok\",\"id\":5,\"nameplate\":\"417\","
	    "\"session\":9,\"expires_at\":1765000600,"
	    "\"burned\":{\"nameplate\":\"52\",\"at\":"
	    "\"2026-12-07T15:54:05Z\",\"reason\":\"wrong code\"}}";
	const char *plain = "{\"t\":\"ok\",\"id\":5,\"nameplate\":\"417\","
			    "\"session\":9,\"expires_at\":1765000600}";
	const char *bad = "{\"t\":\"ok\",\"id\":5,\"nameplate\":\"417\","
			  "\"session\":9,\"expires_at\":1765000600,"
			  "\"burned\":{\"nameplate\":\"052\",\"at\":null}}";
	struct tether_ctrl_invite_ok ok = {
	    .nameplate = "417", .session = 9, .expires_at = 1765000600};
	const struct tether_ctrl_invite_ok *got;
	struct tether_ctrl_msg m;
	char why[TETHER_CTRL_WHY_MAX];
	json_t *back, *want;
	char *text;

	cr_assert_eq(tether_ctrl_decode(burned, strlen(burned), TETHER_CTRL_R2C,
					&m, NULL, 0),
		     0);
	cr_assert_eq(
	    tether_ctrl_decode_answer(&m, TETHER_CTRL_INVITE, why, sizeof(why)),
	    0, "%s", why);
	got = &m.body.invite_ok;
	cr_assert(got->has_burned);
	cr_assert_str_eq(got->burned.nameplate, "52");
	cr_assert_eq(got->burned.at, 1796658845);
	cr_assert_str_eq(got->burned.reason, "wrong code");
	back = tether_ctrl_answer_to_json(TETHER_CTRL_INVITE, 5, &m.body);
	want = json_loads(burned, 0, NULL);
	cr_assert(json_equal(back, want), "%s", json_dumps(back, 0));
	json_decref(back);
	json_decref(want);
	tether_ctrl_msg_free(&m);

	/* Not burned: no member at all (older consoles read it as before). */
	cr_assert_eq(
	    tether_ctrl_encode_answer(TETHER_CTRL_INVITE, 5, &ok, &text, NULL),
	    0);
	want = json_loads(plain, 0, NULL);
	back = json_loads(text, 0, NULL);
	cr_assert(json_equal(back, want), "%s", text);
	json_decref(back);
	json_decref(want);
	tether_free(text);
	cr_assert_eq(tether_ctrl_decode(plain, strlen(plain), TETHER_CTRL_R2C,
					&m, NULL, 0),
		     0);
	cr_assert_eq(tether_ctrl_decode_answer(&m, TETHER_CTRL_INVITE, NULL, 0),
		     0);
	cr_assert(!m.body.invite_ok.has_burned);
	tether_ctrl_msg_free(&m);

	/* A time not known travels as null; the nameplate is checked. */
	ok.has_burned = true;
	ok.burned.nameplate = "52";
	cr_assert_eq(
	    tether_ctrl_encode_answer(TETHER_CTRL_INVITE, 5, &ok, &text, NULL),
	    0);
	cr_assert(strstr(text, "\"burned\":{\"nameplate\":\"52\",\"at\":"
			       "null,\"reason\":null}") != NULL,
		  "%s", text);
	tether_free(text);
	ok.burned.nameplate = "5x";
	cr_assert_eq(
	    tether_ctrl_encode_answer(TETHER_CTRL_INVITE, 5, &ok, &text, NULL),
	    TETHER_ERR_INVALID);
	cr_assert_eq(
	    tether_ctrl_decode(bad, strlen(bad), TETHER_CTRL_R2C, &m, NULL, 0),
	    0);
	cr_assert_eq(
	    tether_ctrl_decode_answer(&m, TETHER_CTRL_INVITE, why, sizeof(why)),
	    TETHER_ERR_FORMAT);
	cr_assert(strstr(why, "\"nameplate\" is not a nameplate") != NULL, "%s",
		  why);
	tether_ctrl_msg_free(&m);
}

Test(ctrl, members_sharing_a_flag_come_together)
{
	const char *half = "{\"t\":\"ok\",\"id\":1,\"session\":3,\"state\":"
			   "\"joined\",\"nameplate\":\"4\",\"agent\":null,"
			   "\"pake_b\":\"" HEX65 "\"}";
	struct tether_ctrl_msg m;
	char why[TETHER_CTRL_WHY_MAX];

	cr_assert_eq(tether_ctrl_decode(half, strlen(half), TETHER_CTRL_R2C, &m,
					NULL, 0),
		     0);
	cr_assert_eq(
	    tether_ctrl_decode_answer(&m, TETHER_CTRL_ATTACH, why, sizeof(why)),
	    TETHER_ERR_FORMAT);
	cr_assert(strstr(why, "\"conf_b\" missing") != NULL, "%s", why);
	tether_ctrl_msg_free(&m);
}

Test(ctrl, answer_without_members)
{
	struct tether_ctrl_msg m;

	cr_assert_eq(tether_ctrl_decode("{\"t\":\"ok\",\"id\":2}", 17,
					TETHER_CTRL_R2C, &m, NULL, 0),
		     0);
	cr_assert_eq(
	    tether_ctrl_decode_answer(&m, TETHER_CTRL_CONFIRM, NULL, 0), 0);
	tether_ctrl_msg_free(&m);
	cr_assert_eq(tether_ctrl_decode("{\"t\":\"ok\",\"id\":2,\"x\":1}", 23,
					TETHER_CTRL_R2C, &m, NULL, 0),
		     0);
	cr_assert_eq(
	    tether_ctrl_decode_answer(&m, TETHER_CTRL_CONFIRM, NULL, 0),
	    TETHER_ERR_PROTOCOL);
	tether_ctrl_msg_free(&m);
}

Test(ctrl, encoder_checks_the_schema)
{
	struct tether_ctrl_ticket_new tn = {.title = ""};
	struct tether_ctrl_check_ack ack = {.seq = 0};
	struct tether_ctrl_chan_open co = {
	    .channel = 1, .kind = TETHER_KINDS, .technician = "alice"};
	char *text = NULL;

	cr_assert_eq(
	    tether_ctrl_encode(TETHER_CTRL_TICKET_NEW, 1, &tn, &text, NULL),
	    TETHER_ERR_INVALID);
	cr_assert_null(text);
	cr_assert_eq(
	    tether_ctrl_encode(TETHER_CTRL_CHECK_ACK, 0, &ack, &text, NULL),
	    TETHER_ERR_INVALID);
	cr_assert_eq(
	    tether_ctrl_encode(TETHER_CTRL_CHAN_OPEN, 0, &co, &text, NULL),
	    TETHER_ERR_INVALID);
	tn.title = "ok";
	/* A request needs an id. */
	cr_assert_eq(
	    tether_ctrl_encode(TETHER_CTRL_TICKET_NEW, 0, &tn, &text, NULL),
	    TETHER_ERR_INVALID);
	cr_assert_eq(
	    tether_ctrl_encode(TETHER_CTRL_TICKET_NEW, 7, &tn, &text, NULL), 0);
	cr_assert_str_eq(text,
			 "{\"title\":\"ok\",\"t\":\"ticket_new\",\"id\":7}");
	tether_free(text);
	cr_assert_eq(tether_ctrl_encode_err(3, TETHER_CTRL_E_DECLINED,
					    "the customer declined", &text,
					    NULL),
		     0);
	cr_assert_str_eq(text, "{\"code\":\"declined\",\"message\":\"the "
			       "customer declined\",\"t\":\"err\",\"id\":3}");
	tether_free(text);
}

/*
 * Values no schema can carry are the program's bug: INVALID (and a log
 * line), never NOMEM and never a crash on a NULL list.
 */
Test(ctrl, encoder_refuses_what_json_cannot_carry)
{
	struct tether_ctrl_ticket_new tn = {.title = "caf\xc3"};
	struct tether_ctrl_enroll en = {
	    .token = "tk", .name = "box", .labels = NULL, .nlabels = 1};
	const char *caps[] = {"exec", NULL};
	struct tether_ctrl_info info = {.technician = "alice",
					.ticket = "T-1",
					.title = "t",
					.capabilities = NULL,
					.ncapabilities = 2};
	char *text = NULL;
	size_t len;

	cr_assert_eq(
	    tether_ctrl_encode(TETHER_CTRL_TICKET_NEW, 1, &tn, &text, NULL),
	    TETHER_ERR_INVALID, "text that is not UTF-8");
	cr_assert_eq(
	    tether_ctrl_encode(TETHER_CTRL_ENROLL, 0, &en, &text, NULL),
	    TETHER_ERR_INVALID, "labels counted but not given");
	cr_assert_eq(
	    tether_ctrl_part_encode(TETHER_CTRL_PART_INFO, &info, &text, &len),
	    TETHER_ERR_INVALID, "capabilities counted but not given");
	info.capabilities = caps;
	cr_assert_eq(
	    tether_ctrl_part_encode(TETHER_CTRL_PART_INFO, &info, &text, &len),
	    TETHER_ERR_INVALID, "a NULL capability");
	info.ncapabilities = 1;
	cr_assert_eq(
	    tether_ctrl_part_encode(TETHER_CTRL_PART_INFO, &info, &text, &len),
	    0);
	tether_free(text);
}

Test(ctrl, every_prefix_is_refused)
{
	size_t i, k, n;

	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		n = strlen(samples[i].json);
		for (k = 0; k < n; k++) {
			struct tether_ctrl_msg m;
			char why[TETHER_CTRL_WHY_MAX];

			/* Cut short, no sample is JSON any more. */
			cr_assert_eq(tether_ctrl_decode(samples[i].json, k,
							samples[i].dirs, &m,
							why, sizeof(why)),
				     TETHER_ERR_PROTOCOL, "%.*s", (int)k,
				     samples[i].json);
			cr_assert(strstr(why, "not JSON") != NULL, "%.*s: %s",
				  (int)k, samples[i].json, why);
			tether_ctrl_msg_free(&m);
		}
	}
}

/*
 * Fails the 1st, 2nd, ... allocation of a decode and a re-encode of every
 * sample until one runs through: each must fail cleanly (LeakSanitizer
 * checks nothing is lost in the ASan build).
 */
Test(ctrl, out_of_memory_everywhere)
{
	size_t i;

	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		unsigned long nth;

		for (nth = 1;; nth++) {
			struct tether_ctrl_msg m;
			char *text = NULL;
			int r;

			cr_assert_lt(nth, 10000);
			tether_alloc_fail_after(nth);
			r = tether_ctrl_decode(samples[i].json,
					       strlen(samples[i].json),
					       samples[i].dirs, &m, NULL, 0);
			if (r == 0)
				r = tether_ctrl_encode(m.type, m.id, &m.body,
						       &text, NULL);
			tether_alloc_fail_after(0);
			tether_ctrl_msg_free(&m);
			tether_free(text);
			if (r == 0)
				break;
			/*
			 * jansson reports a failed allocation while it
			 * parses as a parse error, and while it builds a
			 * string it may keep it short (its lexer does not
			 * check its buffer's growth), which the schema
			 * then refuses as malformed.
			 */
			cr_assert(
			    r == TETHER_ERR_NOMEM || r == TETHER_ERR_PROTOCOL ||
				r == TETHER_ERR_NOT_FOUND ||
				r == TETHER_ERR_FORMAT,
			    "%s: %s", samples[i].json, tether_strerror(r));
		}
	}
}

Test(ctrl, parts)
{
	const char *info = "{\"technician\":\"alice\",\"ticket\":\"T-5\","
			   "\"title\":\"Secret\",\"capabilities\":[\"exec\","
			   "\"teleport\"]}";
	struct tether_ctrl_label labels[] = {{"env", "prod"}};
	struct tether_ctrl_labels l = {labels, 1};
	struct tether_ctrl_part_msg m;
	char *text;
	char why[TETHER_CTRL_WHY_MAX];

	cr_assert_eq(tether_ctrl_part_decode(TETHER_CTRL_PART_INFO, info,
					     strlen(info), &m, NULL, 0),
		     0);
	cr_assert_eq(m.body.info.ncapabilities, 2);
	cr_assert_str_eq(m.body.info.capabilities[1], "teleport");
	cr_assert_eq(tether_ctrl_part_encode(TETHER_CTRL_PART_INFO,
					     &m.body.info, &text, NULL),
		     0);
	cr_assert_str_eq(text, info);
	tether_free(text);
	tether_ctrl_part_free(&m);
	cr_assert_eq(
	    tether_ctrl_part_encode(TETHER_CTRL_PART_LABELS, &l, &text, NULL),
	    0);
	cr_assert_str_eq(text, "{\"env\":\"prod\"}");
	tether_free(text);
	l.nlabels = 0;
	cr_assert_eq(
	    tether_ctrl_part_encode(TETHER_CTRL_PART_LABELS, &l, &text, NULL),
	    0);
	cr_assert_str_eq(text, "{}");
	tether_free(text);
	cr_assert_eq(tether_ctrl_part_decode(TETHER_CTRL_PART_PERFDATA, "{}", 2,
					     &m, why, sizeof(why)),
		     TETHER_ERR_FORMAT);
	cr_assert(strstr(why, "member \"perfdata\" is not an array") != NULL,
		  "reason: %s", why);
	tether_ctrl_part_free(&m);
}

Test(ctrl, times)
{
	char buf[TETHER_CTRL_TIME_LEN];
	int64_t t;

	cr_assert_eq(tether_ctrl_time_format(0, buf), 0);
	cr_assert_str_eq(buf, "1970-01-01T00:00:00Z");
	cr_assert_eq(tether_ctrl_time_format(1765122845, buf), 0);
	cr_assert_str_eq(buf, "2025-12-07T15:54:05Z");
	cr_assert_eq(tether_ctrl_time_parse(buf, &t), 0);
	cr_assert_eq(t, 1765122845);
	cr_assert_eq(tether_ctrl_time_parse("2024-02-29T23:59:59Z", &t), 0);
	cr_assert_eq(t, 1709251199);
	cr_assert_eq(tether_ctrl_time_parse("2023-02-29T00:00:00Z", &t),
		     TETHER_ERR_FORMAT);
	cr_assert_eq(tether_ctrl_time_parse("2023-01-01 00:00:00Z", &t),
		     TETHER_ERR_FORMAT);
	cr_assert_eq(tether_ctrl_time_parse("2023-01-01T00:00:00", &t),
		     TETHER_ERR_FORMAT);
	cr_assert_eq(tether_ctrl_time_parse("1969-12-31T23:59:59Z", &t),
		     TETHER_ERR_FORMAT);
	cr_assert_eq(tether_ctrl_time_format(-1, buf), TETHER_ERR_INVALID);
	for (t = 0; t < 4102444800; t += 86399 * 17) {
		int64_t back;

		cr_assert_eq(tether_ctrl_time_format(t, buf), 0);
		cr_assert_eq(tether_ctrl_time_parse(buf, &back), 0);
		cr_assert_eq(back, t, "%s", buf);
	}
}

Test(ctrl, words)
{
	cr_assert_eq(tether_ctrl_word_of(kind, "diag"), TETHER_KIND_DIAG);
	cr_assert_eq(tether_ctrl_word_of(kind, "DIAG"), -1);
	cr_assert_eq(tether_ctrl_word_of(kind, NULL), -1);
	cr_assert_str_eq(tether_ctrl_name_of(check_state, TETHER_CHECK_UNKNOWN),
			 "UNKNOWN");
	cr_assert_str_eq(tether_ctrl_name_of(check_state, 9), "?");
	cr_assert_eq(tether_ctrl_kind_nwords, TETHER_KINDS);
	cr_assert_eq(tether_ctrl_session_state_nwords,
		     TETHER_SESSION_DECLINED + 1);
	cr_assert_str_eq(tether_ctrl_code_name(TETHER_CTRL_E_DECLINED),
			 "declined");
	(void)FP;
}
