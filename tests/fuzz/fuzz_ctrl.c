/*
 * libFuzzer target for the control-message codec (ctrl.h): the JSON every
 * peer sends in CTRL frames, and the parts that travel as JSON text inside
 * them (the pairing info) or sit in the relay's database (facts, labels).
 *
 * Input: byte 0 picks the decoder, the rest is the payload.
 *   bit 4 clear: a message, tether_ctrl_decode() with dirs = b0 & 0xf
 *                (1 console to relay, 2 relay to console, 4 agent to
 *                relay, 8 relay to agent, and every union of them); an
 *                "ok" is then taken apart as the answer to every request
 *                type in turn, as a console would for whichever request
 *                it had sent.
 *   bit 4 set:   a part, tether_ctrl_part_decode() for part
 *                (b0 & 0xf) % TETHER_CTRL_PARTS.
 *
 * Invariants: a refusal leaves the message empty, says why and is one of
 * the documented errors; whatever decodes encodes again (the encoders
 * check the schema as strictly as the decoders, so a program can always
 * echo or store what it accepted), and that encoding decodes to the same
 * message and encodes to the same JSON.  The first encoding may differ
 * from the input (defaults filled in, long text clipped, "t-5" written
 * "T-5"), the second may not.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tether/alloc.h>
#include <tether/ctrl.h>
#include <tether/err.h>

#include "fuzz.h"

/* A refusal is one of the documented errors, with a reason. */
static void check_refusal(int r, const char *why)
{
	CHECK(r == TETHER_ERR_PROTOCOL || r == TETHER_ERR_FORMAT ||
	      r == TETHER_ERR_NOT_FOUND || r == TETHER_ERR_NOMEM);
	CHECK(strlen(why) < TETHER_CTRL_WHY_MAX);
	if (r != TETHER_ERR_NOMEM)
		CHECK(why[0] != '\0');
}

/* Encoded JSON text, and the same message as a JSON value. */
struct encoded {
	char *text;
	size_t len;
	json_t *json;
};

static void encoded_free(struct encoded *e)
{
	tether_free(e->text);
	json_decref(e->json);
}

/* m (a message, or an answer to request when request is not OK). */
static void encode_msg(const struct tether_ctrl_msg *m,
		       enum tether_ctrl_type request, struct encoded *e)
{
	int r;

	if (request == TETHER_CTRL_OK) {
		r = tether_ctrl_encode(m->type, m->id, &m->body, &e->text,
				       &e->len);
		e->json = tether_ctrl_to_json(m->type, m->id, &m->body);
	} else {
		r = tether_ctrl_encode_answer(request, m->id, &m->body,
					      &e->text, &e->len);
		e->json = tether_ctrl_answer_to_json(request, m->id, &m->body);
	}
	/* What was accepted can be sent on. */
	CHECK(r == 0);
	CHECK(e->text != NULL && e->json != NULL);
	CHECK(strlen(e->text) == e->len);
}

/*
 * The second round of an accepted message: its encoding decodes in the
 * same directions to the same type and id, and encodes to equal JSON.
 */
static void round_trip(const struct tether_ctrl_msg *m, unsigned dirs,
		       enum tether_ctrl_type request)
{
	char why[TETHER_CTRL_WHY_MAX];
	struct encoded e1 = {0}, e2 = {0};
	struct tether_ctrl_msg m2;
	int r;

	encode_msg(m, request, &e1);
	r = tether_ctrl_decode(e1.text, e1.len, dirs, &m2, why, sizeof(why));
	if (r != 0)
		fprintf(stderr, "%s: refused again: %s\n", e1.text, why);
	CHECK(r == 0);
	CHECK(m2.type == m->type);
	CHECK(m2.id == m->id);
	if (request != TETHER_CTRL_OK) {
		r = tether_ctrl_decode_answer(&m2, request, why, sizeof(why));
		if (r != 0)
			fprintf(stderr, "%s: answer refused again: %s\n",
				e1.text, why);
		CHECK(r == 0);
	}
	encode_msg(&m2, request, &e2);
	if (!json_equal(e1.json, e2.json))
		fprintf(stderr, "%s came back as %s\n", e1.text, e2.text);
	CHECK(json_equal(e1.json, e2.json));
	CHECK(strcmp(e1.text, e2.text) == 0);
	encoded_free(&e1);
	encoded_free(&e2);
	tether_ctrl_msg_free(&m2);
}

/* Tries an "ok" as the answer to every request type. */
static void answers(struct tether_ctrl_msg *m, unsigned dirs)
{
	char why[TETHER_CTRL_WHY_MAX];
	unsigned t;
	int r;

	for (t = 0; t < TETHER_CTRL_TYPES; t++) {
		r = tether_ctrl_decode_answer(m, (enum tether_ctrl_type)t, why,
					      sizeof(why));
		CHECK(m->type == TETHER_CTRL_OK);
		/* Not a request: no answer to take apart. */
		if (r == TETHER_ERR_STATE)
			continue;
		if (r != 0) {
			check_refusal(r, why);
			continue;
		}
		round_trip(m, dirs, (enum tether_ctrl_type)t);
	}
}

static void message(const uint8_t *p, size_t n, unsigned dirs)
{
	char why[TETHER_CTRL_WHY_MAX];
	struct tether_ctrl_msg m;
	int r;

	r = tether_ctrl_decode(p, n, dirs, &m, why, sizeof(why));
	if (r != 0) {
		check_refusal(r, why);
		/* Empty, but the type is kept once it was known. */
		CHECK(m.root_ == NULL && m.blocks_ == NULL && m.id == 0);
		CHECK(m.type == TETHER_CTRL_TYPES ||
		      (tether_ctrl_type_dirs(m.type) & dirs) != 0);
		tether_ctrl_msg_free(&m);
		return;
	}
	CHECK(why[0] == '\0');
	CHECK((unsigned)m.type < TETHER_CTRL_TYPES);
	CHECK((tether_ctrl_type_dirs(m.type) & dirs) != 0);
	if (m.type == TETHER_CTRL_OK) {
		CHECK(m.id >= 1);
		answers(&m, dirs);
	} else {
		round_trip(&m, dirs, TETHER_CTRL_OK);
	}
	tether_ctrl_msg_free(&m);
}

static void part(const uint8_t *p, size_t n, enum tether_ctrl_part pt)
{
	char why[TETHER_CTRL_WHY_MAX], *t1 = NULL, *t2 = NULL;
	struct tether_ctrl_part_msg m, m2;
	json_t *j1, *j2;
	size_t l1, l2;
	int r;

	r = tether_ctrl_part_decode(pt, p, n, &m, why, sizeof(why));
	if (r != 0) {
		/* Parts are not messages: bad JSON is a FORMAT error. */
		CHECK(r == TETHER_ERR_FORMAT || r == TETHER_ERR_PROTOCOL ||
		      r == TETHER_ERR_NOMEM);
		CHECK(m.root_ == NULL && m.blocks_ == NULL && m.part == pt);
		tether_ctrl_part_free(&m);
		return;
	}
	CHECK(tether_ctrl_part_encode(pt, &m.body, &t1, &l1) == 0);
	j1 = tether_ctrl_part_to_json(pt, &m.body);
	CHECK(t1 != NULL && j1 != NULL && strlen(t1) == l1);
	r = tether_ctrl_part_decode(pt, t1, l1, &m2, why, sizeof(why));
	if (r != 0)
		fprintf(stderr, "%s: refused again: %s\n", t1, why);
	CHECK(r == 0);
	CHECK(tether_ctrl_part_encode(pt, &m2.body, &t2, &l2) == 0);
	j2 = tether_ctrl_part_to_json(pt, &m2.body);
	CHECK(t2 != NULL && j2 != NULL);
	if (!json_equal(j1, j2))
		fprintf(stderr, "%s came back as %s\n", t1, t2);
	CHECK(json_equal(j1, j2));
	CHECK(strcmp(t1, t2) == 0);
	json_decref(j1);
	json_decref(j2);
	tether_free(t1);
	tether_free(t2);
	tether_ctrl_part_free(&m);
	tether_ctrl_part_free(&m2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 0x10)
		part(data + 1, size - 1,
		     (enum tether_ctrl_part)((data[0] & 0xf) %
					     TETHER_CTRL_PARTS));
	else
		message(data + 1, size - 1, data[0] & 0xf);
	return 0;
}
