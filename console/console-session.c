/*
 * A ticket's session as the channel driver (console-run.c) and the forward
 * bridge (console-forward.c) use it: attach, which gets the session key
 * (pairing first if the agent has just joined, console-pair.c), then
 * channels opened on it, each keyed from Ke and a fresh nonce from either
 * side.  The bridge opens many channels at once and cannot wait inside its
 * loop, so an open is also a request and an answer apart.
 */
#include <tether/buf.h>
#include <tether/chan.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/msg.h>
#include <tether/proto.h>

#include "console.h"

int console_session_attach(struct console_client *c, int64_t ticket,
			   const char *ticket_name, int64_t *session,
			   uint8_t ke[TETHER_SPAKE2_KE_LEN])
{
	const struct tether_ctrl_ticket_ref req = {.ticket = ticket};
	struct tether_ctrl_msg ans;
	int r, ret = -1;

	*session = 0;
	r = console_client_call(c, TETHER_CTRL_ATTACH, &req, &ans);
	if (r == CONSOLE_EREMOTE)
		console_client_report_err(&ans.body.err, ticket_name);
	if (r == 0 &&
	    console_pair_key(c, ticket_name, &ans.body.attach_ok, ke) == 0) {
		*session = ans.body.attach_ok.session;
		ret = 0;
	}
	tether_ctrl_msg_free(&ans);
	return ret;
}

int console_session_open_request(int64_t session, enum tether_kind kind,
				 struct tether_ctrl_open *req)
{
	req->session = session;
	req->kind = kind;
	if (tether_random(req->nonce, sizeof(req->nonce)) != 0) {
		console_error("cannot draw a nonce");
		return -1;
	}
	return 0;
}

int console_session_open_answer(const struct tether_ctrl_open_ok *ok,
				const struct tether_ctrl_open *req,
				const uint8_t *ke, struct tether_chan **chan)
{
	*chan = tether_chan_new((uint32_t)ok->channel, true, ke,
				TETHER_SPAKE2_KE_LEN, req->nonce, ok->nonce);
	if (*chan == NULL) {
		console_error("cannot set up the channel keys");
		return -1;
	}
	/* File channels keep more in flight; the agent does the same. */
	if (req->kind == TETHER_KIND_FILE &&
	    tether_chan_set_window(*chan, TETHER_FILE_WINDOW) != 0) {
		console_error("cannot set up the channel");
		tether_chan_free(*chan);
		*chan = NULL;
		return -1;
	}
	return 0;
}

int console_session_open(struct console_client *c, int64_t session,
			 enum tether_kind kind, const uint8_t *ke,
			 struct tether_chan **chan)
{
	struct tether_ctrl_open req;
	struct tether_ctrl_msg ans;
	int r, ret = -1;

	*chan = NULL;
	if (console_session_open_request(session, kind, &req) != 0)
		return -1;
	r = console_client_call(c, TETHER_CTRL_OPEN, &req, &ans);
	if (r == CONSOLE_EREMOTE)
		console_client_report_err(&ans.body.err, NULL);
	if (r == 0)
		ret = console_session_open_answer(&ans.body.open_ok, &req, ke,
						  chan);
	tether_ctrl_msg_free(&ans);
	return ret;
}

int console_session_send_eof(struct tether_chan *chan, struct tether_link *l)
{
	const struct tether_msg_eof m = {.stream = TETHER_MSG_STREAM_STDIN};
	struct tether_buf *b = tether_buf_new(1);
	int err = b != NULL ? tether_msg_encode_eof(b, &m) : TETHER_ERR_NOMEM;

	if (err == 0)
		err = tether_chan_send(chan, l, TETHER_MSG_EOF,
				       tether_buf_ptr(b), tether_buf_len(b));
	tether_buf_free(b);
	return err;
}
