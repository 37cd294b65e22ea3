/*
 * Protocol constants shared by relay, agent and console (docs/protocol.md).
 * Bump TETHER_PROTOCOL_VERSION if any of these change meaning.
 */
#ifndef TETHER_PROTO_H
#define TETHER_PROTO_H

/*
 * 2: consoles sign a challenge with a technician key (hello, auth), the
 * pairing info travels sealed in confirm, confirmed carries the consent.
 */
#define TETHER_PROTOCOL_VERSION 2
/* The same as text, for the words of refusals. */
#define TETHER_PROTOCOL_VERSION_TEXT "2"
#define TETHER_DEFAULT_PORT 7443
#define TETHER_DEFAULT_LISTEN "127.0.0.1:7443"
#define TETHER_DEFAULT_METRICS "127.0.0.1:9464"

/* SPAKE2 identities and the prefix of the confirmation AAD. */
#define TETHER_PAKE_ID_A "tether/1 console"
#define TETHER_PAKE_ID_B "tether/1 agent"
#define TETHER_PAKE_AAD_PREFIX "tether/1 pairing "
#define TETHER_PAKE_W_SALT "tether/1 spake2 w"

/* Invite lifetime: default and bounds, seconds. */
#define TETHER_INVITE_TTL_DEFAULT 600
#define TETHER_INVITE_TTL_MAX (24 * 3600)

/*
 * The reason the relay gives a console (ERROR) and the agent (close of
 * each channel) when the console's technician has been removed.
 */
#define TETHER_REASON_TECH_REMOVED "technician removed"
/*
 * The start of the reason the relay gives when a technician may no longer
 * act on a ticket (their role was lowered, the ticket was given to someone
 * else): "access revoked: T-3 was reassigned to bob by admin".
 */
#define TETHER_REASON_REVOKED "access revoked: "
/* The same when the technician logged in again with a new key. */
#define TETHER_REASON_TECH_KEY_REPLACED "technician key replaced by a new login"

/* Keepalive: clients ping this often; the relay drops silent peers. */
#define TETHER_PING_INTERVAL_MS 15000
#define TETHER_IDLE_TIMEOUT_MS 60000

/*
 * Sealed channel messages: the first plaintext byte of every DATA frame
 * (after opening the seal) is one of these.  tether/msg.h encodes and
 * decodes the bodies.
 */
enum tether_msg {
	TETHER_MSG_EXEC = 1,   /* u32 argc, argc x cstring */
	TETHER_MSG_STDIN = 2,  /* bytes */
	TETHER_MSG_STDOUT = 3, /* bytes */
	TETHER_MSG_STDERR = 4, /* bytes */
	TETHER_MSG_EOF = 5,    /* u8 stream (0 stdin, 1 stdout, 2 stderr) */
	TETHER_MSG_EXIT = 6,   /* u8 how (0 exited, 1 signal), u32 value */
	TETHER_MSG_WINDOW = 7, /* u32 bytes of credit added */
	TETHER_MSG_CLOSE = 8,  /* nothing; the last message of a channel */
	TETHER_MSG_ERROR = 9,  /* cstring reason */
	/*
	 * u8 flags (TETHER_SHELL_PTY), cstring TERM, u16 cols, u16 rows,
	 * u32 argc, argc x cstring (argc 0: the user's login shell).
	 */
	TETHER_MSG_SHELL = 10,
	TETHER_MSG_RESIZE = 11, /* u16 cols, u16 rows */
	/*
	 * File transfer (kind "file"; docs/protocol.md, "File transfer";
	 * bodies are described in tether/xfer.h).  The console opens with
	 * GET (the agent sends) or PUT (the agent receives); then the sender
	 * and the receiver speak the rest.
	 */
	TETHER_MSG_GET = 12,	/* console: u8 flags, u32 n, n x cstring */
	TETHER_MSG_PUT = 13,	/* console: u8 flags, cstring destination */
	TETHER_MSG_ENTRY = 14,	/* sender: one file, directory or symlink */
	TETHER_MSG_ACCEPT = 15, /* receiver: u64 offset to start the file at */
	TETHER_MSG_BLOCK = 16,	/* sender: u8 encoding, bytes (data) */
	TETHER_MSG_FILE_END = 17, /* sender: u8 ok, sha256[32] | cstring */
	TETHER_MSG_RESULT = 18,	  /* receiver: u8 ok, cstring reason */
	TETHER_MSG_SKIP = 19,	  /* sender: cstring path, cstring reason */
	TETHER_MSG_XFER_END = 20, /* either: no more entries / results */
	/*
	 * Forward (kind "forward"): the console's first message names the
	 * target; then STDIN carries bytes to it and STDOUT bytes from it,
	 * EOF(0)/EOF(1) are the two half-closes, ERROR a failure.
	 */
	TETHER_MSG_FORWARD = 21,   /* console: cstring host, u16 port */
	TETHER_MSG_CONNECTED = 22, /* agent: the TCP connection is up */
};

#define TETHER_SHELL_PTY 0x01

/*
 * Values that control messages carry as words (their wire words are in
 * ctrl.h's TETHER_CTRL_WORD_LISTS, in this order), here so that code
 * which never sees a message (the relay's store) can use them.
 */
/* Who says hello. */
enum tether_role { TETHER_ROLE_CONSOLE, TETHER_ROLE_AGENT };
/* Channel kinds a console may open. */
enum tether_kind {
	TETHER_KIND_EXEC,
	TETHER_KIND_SHELL,
	TETHER_KIND_FILE,
	TETHER_KIND_FORWARD,
	TETHER_KIND_DIAG,
	TETHER_KINDS
};
/* Nagios states, numbered as plugins exit. */
enum tether_check_state {
	TETHER_CHECK_OK,
	TETHER_CHECK_WARNING,
	TETHER_CHECK_CRITICAL,
	TETHER_CHECK_UNKNOWN
};
enum tether_check_type { TETHER_CHECK_SOFT, TETHER_CHECK_HARD };
/* Which hard states of a check open a ticket. */
enum tether_ticket_on {
	TETHER_TICKET_ON_CRITICAL,
	TETHER_TICKET_ON_WARNING,
	TETHER_TICKET_ON_NEVER
};
enum tether_xfer_dir { TETHER_XFER_DIR_PUT, TETHER_XFER_DIR_GET };
/* Numbered as ENTRY types (xfer.h), 0 for a SKIP. */
enum tether_xfer_type {
	TETHER_XFER_TYPE_SKIP,
	TETHER_XFER_TYPE_FILE,
	TETHER_XFER_TYPE_DIR,
	TETHER_XFER_TYPE_SYMLINK
};
enum tether_ticket_status { TETHER_TICKET_OPEN, TETHER_TICKET_CLOSED };
enum tether_ticket_source { TETHER_SOURCE_MANUAL, TETHER_SOURCE_HEALTH };
/* What a technician may do: docs/security.md, "Roles" (relay-policy.c). */
enum tether_tech_role {
	TETHER_TECH_ADMIN,
	TETHER_TECH_TECHNICIAN,
	TETHER_TECH_AUDITOR
};
enum tether_session_state {
	TETHER_SESSION_WAITING,
	TETHER_SESSION_JOINED,
	TETHER_SESSION_PAIRED,
	TETHER_SESSION_ENDED,
	TETHER_SESSION_BURNED,
	TETHER_SESSION_EXPIRED,
	TETHER_SESSION_DECLINED
};

/* Channel kinds a console may open. */
#define TETHER_KIND_NAME_EXEC "exec"
#define TETHER_KIND_NAME_SHELL "shell"
#define TETHER_KIND_NAME_FILE "file"
#define TETHER_KIND_NAME_FORWARD "forward"
#define TETHER_KIND_NAME_DIAG "diag"
/* Where a forward goes when the console names no host or port. */
#define TETHER_FORWARD_HOST "127.0.0.1"
#define TETHER_FORWARD_PORT 22

/* Per-channel credit for data bytes (STDIN/STDOUT/STDERR payloads). */
#define TETHER_CHANNEL_WINDOW (4u * 1024 * 1024)
/*
 * File channels keep more in flight, to fill a long fat path: 16 MiB is
 * 1 Gbit/s at 130 ms round trip.  The relay's memory does not grow with
 * it (its queues are bounded by the link's high-water mark); the receiver
 * writes each block as it comes.
 */
#define TETHER_FILE_WINDOW (16u * 1024 * 1024)
#define TETHER_CHANNEL_WINDOW_MAX (64u * 1024 * 1024)
/* Largest plaintext data chunk put in one DATA frame. */
#define TETHER_CHANNEL_CHUNK (64u * 1024)

/* A packed diagnostics bundle (base64 of zlib'ed JSON) is at most this. */
#define TETHER_BUNDLE_MAX (192u * 1024)
/* Enrolled agents: check results queued while disconnected. */
#define TETHER_CHECK_QUEUE_MAX 1000
/* What an enrolled agent signs: this (with its NUL), challenge, name. */
#define TETHER_AGENT_AUTH_CONTEXT "tether/1 agent auth"
#define TETHER_AGENT_CHALLENGE_LEN 32
/*
 * What a console signs instead (tether_sign_console_auth_message()): a
 * label of its own, so that no signature a technician's key makes can
 * pass for an agent's, or the other way round.
 */
#define TETHER_CONSOLE_AUTH_CONTEXT "tether/1 console auth"
#define TETHER_ENROLL_TTL_DEFAULT 3600

#endif /* TETHER_PROTO_H */
