/*
 * The customer's terminal (agent/session/term.c) without a terminal: its
 * lines, the words shown for what a technician asked, and questions,
 * which are answered on the loop (never from within the call that asks)
 * and one at a time.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session/term.h"

struct lines {
	FILE *fp;
	char *buf;
	size_t len;
};

static struct agent_term *term_new(uv_loop_t *loop, struct lines *l)
{
	struct agent_term_opts o = {.view = AGENT_VIEW_OFF, .unattended = true};

	l->fp = open_memstream(&l->buf, &l->len);
	cr_assert_not_null(l->fp);
	o.out = o.err = l->fp;
	return agent_term_new(loop, &o);
}

static const char *lines_of(struct lines *l)
{
	fflush(l->fp);
	return l->buf != NULL ? l->buf : "";
}

static void lines_free(struct lines *l)
{
	fclose(l->fp);
	free(l->buf);
}

struct asked {
	struct agent_question q;
	int answers;
	enum agent_answer last;
};

static void on_answer(struct agent_question *q, enum agent_answer a)
{
	struct asked *k = (struct asked *)q;

	k->answers++;
	k->last = a;
}

static void ask(struct agent_term *t, struct asked *k)
{
	memset(k, 0, sizeof(*k));
	k->q.text = "Allow? [y/N] ";
	k->q.answered = on_answer;
	agent_term_ask(t, &k->q);
}

Test(agent_term, lines_carry_the_program_name)
{
	struct lines l;
	struct agent_term *t;
	uv_loop_t loop;

	cr_assert_eq(uv_loop_init(&loop), 0);
	t = term_new(&loop, &l);
	agent_term_say(t, "alice runs: %s", "ls");
	agent_term_warn(t, "channel %u: %s", 3u, "oops");
	cr_expect_str_eq(lines_of(&l), "tether-agent: alice runs: ls\n"
				       "tether-agent: channel 3: oops\n");
	agent_term_free(t);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_expect_eq(uv_loop_close(&loop), 0);
	lines_free(&l);
}

Test(agent_term, words_are_cleaned_and_cut)
{
	char *words[] = {"ls", "\033[2J", "", "x"};
	char out[16];

	agent_term_words(words, 4, ".", out, sizeof(out));
	cr_expect_str_eq(out, "ls ?[2J . x");
	agent_term_words(words, 4, "", out, 8);
	cr_expect_str_eq(out, "ls ...");
}

Test(agent_term, sizes)
{
	char out[32];

	agent_term_size(512, out, sizeof(out));
	cr_expect_str_eq(out, "512 B");
	agent_term_size(1536, out, sizeof(out));
	cr_expect_str_eq(out, "1.5 KiB");
	/* Not "1024.0 KiB". */
	agent_term_size(1024 * 1024 - 10, out, sizeof(out));
	cr_expect_str_eq(out, "1.0 MiB");
}

Test(agent_term, unattended_questions_are_refused_on_the_loop)
{
	struct asked a, b, c;
	struct lines l;
	struct agent_term *t;
	uv_loop_t loop;

	cr_assert_eq(uv_loop_init(&loop), 0);
	t = term_new(&loop, &l);
	cr_expect_not(agent_term_attended(t));
	ask(t, &a);
	ask(t, &b);
	ask(t, &c);
	cr_expect_eq(a.answers, 0, "answered from within the call");
	/* A queued question taken back is never answered. */
	cr_expect_not(agent_term_withdraw(t, &b.q));
	while ((a.answers == 0 || c.answers == 0) &&
	       uv_run(&loop, UV_RUN_ONCE) != 0)
		;
	cr_expect_eq(a.answers, 1);
	cr_expect_eq(a.last, AGENT_ANSWER_NO_TERMINAL);
	cr_expect_eq(b.answers, 0);
	cr_expect_eq(c.answers, 1);
	agent_term_free(t);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_expect_eq(uv_loop_close(&loop), 0);
	lines_free(&l);
}

Test(agent_term, no_question_goes_up_once_ending)
{
	struct lines l;
	struct agent_term *t;
	struct asked a;
	uv_loop_t loop;

	cr_assert_eq(uv_loop_init(&loop), 0);
	t = term_new(&loop, &l);
	agent_term_end_questions(t);
	ask(t, &a);
	uv_run(&loop, UV_RUN_NOWAIT);
	cr_expect_eq(a.answers, 0);
	cr_expect_not(agent_term_withdraw(t, &a.q));
	agent_term_free(t);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_expect_eq(uv_loop_close(&loop), 0);
	lines_free(&l);
}
