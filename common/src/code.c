/*
 * Session codes: "NAMEPLATE-word-word-word".  Generation draws each word
 * uniformly from the 256-word list below; parsing accepts what a
 * person is likely to type (any case, blanks around, spaces for dashes) and
 * produces the one normalised spelling both peers feed to SPAKE2.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <tether/code.h>
#include <tether/crypto.h>
#include <tether/err.h>

/*
 * The word list: 256 words, one byte each.  Chosen to be
 * concrete, common and easy to say and spell: 4-6 lower-case letters, no
 * homophones we know of (no "beach"/"beech"), and every word has its own
 * first three letters, so no word is a prefix of another and three typed
 * letters are enough to tell them apart.  Kept sorted.  Changing the list
 * changes which codes are valid: old and new peers must agree.  Rows
 * have a fixed width: parsing compares against every row in equal time.
 */
static const char words[TETHER_CODE_WORDLIST_LEN][7] = {
    "acorn",  "actor",	"agent",  "alarm",  "album",  "alpha",	"amber",
    "anchor", "anvil",	"apple",  "apron",  "arena",  "arrow",	"atlas",
    "attic",  "autumn", "badge",  "bagel",  "baker",  "bamboo", "banjo",
    "barrel", "basket", "beaver", "beetle", "bingo",  "blade",	"bonus",
    "border", "bottle", "bounce", "brain",  "breeze", "bridge", "bronze",
    "bubble", "bucket", "bugle",  "bundle", "button", "cabin",	"cactus",
    "camel",  "canoe",	"carpet", "castle", "chalk",  "cherry", "circus",
    "citrus", "clover", "cobra",  "cocoa",  "comet",  "cookie", "copper",
    "cotton", "cougar", "cowboy", "crayon", "crown",  "daisy",	"dance",
    "delta",  "dingo",	"disco",  "doctor", "domino", "donkey", "dragon",
    "drum",   "eagle",	"elbow",  "ember",  "engine", "falcon", "fiddle",
    "fiesta", "finch",	"flute",  "forest", "fossil", "fridge", "frost",
    "funnel", "gadget", "galaxy", "garden", "gecko",  "ginger", "globe",
    "goose",  "gopher", "grape",  "guitar", "hammer", "hazel",	"helmet",
    "hippo",  "hollow", "honey",  "hotel",  "husky",  "igloo",	"indigo",
    "island", "ivory",	"jacket", "jaguar", "jelly",  "jersey", "jigsaw",
    "jockey", "jungle", "kayak",  "kettle", "kiosk",  "kitten", "koala",
    "ladder", "lagoon", "laptop", "legend", "lemon",  "lilac",	"lion",
    "lizard", "locket", "lotus",  "lumen",  "magnet", "mango",	"maple",
    "marble", "meadow", "meteor", "mirror", "mitten", "monkey", "mosaic",
    "motor",  "muffin", "museum", "napkin", "nectar", "noodle", "nugget",
    "oasis",  "ocean",	"olive",  "omega",  "onion",  "opera",	"orange",
    "orbit",  "orchid", "otter",  "oyster", "paddle", "pagoda", "palace",
    "panda",  "paper",	"parrot", "pasta",  "peanut", "pebble", "pepper",
    "piano",  "pickle", "pilot",  "pirate", "pixel",  "pizza",	"planet",
    "polka",  "pony",	"potato", "puppet", "puzzle", "quill",	"rabbit",
    "radio",  "raisin", "ranch",  "raven",  "recipe", "rhino",	"ribbon",
    "riddle", "river",	"robot",  "rocket", "rodeo",  "rover",	"rubber",
    "saddle", "safari", "salsa",  "sandal", "saturn", "scarf",	"shadow",
    "shrimp", "signal", "silver", "skate",  "sketch", "sloth",	"snail",
    "socket", "sofa",	"solar",  "spark",  "spider", "spoon",	"squid",
    "statue", "stereo", "storm",  "sugar",  "summit", "sunset", "syrup",
    "tablet", "taco",	"talent", "tango",  "teapot", "tennis", "ticket",
    "tiger",  "timber", "toast",  "tomato", "topaz",  "torch",	"tower",
    "trophy", "tulip",	"tunnel", "turtle", "tuxedo", "velvet", "viking",
    "violin", "vortex", "waffle", "wagon",  "walrus", "wheat",	"willow",
    "window", "wizard", "zebra",  "zipper"};

const char *tether_code_word(unsigned i)
{
	if (i >= TETHER_CODE_WORDLIST_LEN)
		return NULL;
	return words[i];
}

#define WORD_MAX 6 /* longest word in the list */
#define NTOKENS (1 + TETHER_CODE_WORDS)

static const char why_empty[] = "empty code";
static const char why_shape[] = "code must look like 7-word-word-word";
static const char why_nameplate[] = "bad nameplate in code";
static const char why_word[] = "unknown word in code";

struct token {
	const char *s;
	size_t len;
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	       c == '\f';
}

static bool nameplate_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > TETHER_CODE_NAMEPLATE_MAX || s[0] == '0')
		return false;
	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

bool tether_code_nameplate_valid(const char *nameplate)
{
	if (!nameplate)
		return false;
	return nameplate_ok(nameplate,
			    strnlen(nameplate, TETHER_CODE_NAMEPLATE_MAX + 1));
}

/*
 * Index of the word in the list, or -1.  Compares against every entry
 * without stopping early: the words are the secret part of the code.
 */
static int find_word(const char word[WORD_MAX + 1])
{
	int found = -1;
	unsigned i;

	for (i = 0; i < TETHER_CODE_WORDLIST_LEN; i++) {
		char row[WORD_MAX + 1] = {0};
		const char *w = tether_code_word(i);

		memcpy(row, w, strnlen(w, WORD_MAX));
		if (tether_ct_equal(row, word, sizeof(row)))
			found = (int)i;
	}
	return found;
}

/* Appends n bytes at *pos in buf (cap bytes); false if it would not fit. */
static bool append(char *buf, size_t cap, size_t *pos, const char *s, size_t n)
{
	if (n >= cap - *pos)
		return false;
	memcpy(buf + *pos, s, n);
	*pos += n;
	return true;
}

int tether_code_generate(const char *nameplate, char *out, size_t outlen)
{
	char buf[TETHER_CODE_MAX];
	size_t pos = 0;
	uint32_t idx;
	int i, err = 0;

	if (!out || !tether_code_nameplate_valid(nameplate))
		return TETHER_ERR_INVALID;
	if (!append(buf, sizeof(buf), &pos, nameplate, strlen(nameplate))) {
		err = TETHER_ERR_TOO_LARGE;
		goto out;
	}
	for (i = 0; i < TETHER_CODE_WORDS; i++) {
		const char *w;

		err = tether_random_uniform(TETHER_CODE_WORDLIST_LEN, &idx);
		if (err)
			goto out;
		w = tether_code_word(idx);
		if (!append(buf, sizeof(buf), &pos, "-", 1) ||
		    !append(buf, sizeof(buf), &pos, w, strlen(w))) {
			err = TETHER_ERR_TOO_LARGE;
			goto out;
		}
	}
	if (pos >= outlen) {
		err = TETHER_ERR_TOO_LARGE;
		goto out;
	}
	memcpy(out, buf, pos);
	out[pos] = '\0';
out:
	/* The words are the password. */
	tether_wipe(buf, sizeof(buf));
	tether_wipe(&idx, sizeof(idx));
	return err;
}

/*
 * Splits [p, end) into words separated by a run of blanks, a dash, or a
 * dash with blanks around it.  Fails on an empty word (two dashes, a
 * leading or trailing dash) or on more than NTOKENS words.
 */
static int split(const char *p, const char *end, struct token tok[NTOKENS],
		 size_t *ntok)
{
	size_t n = 0;

	for (;;) {
		const char *start = p;

		while (p < end && !is_blank(*p) && *p != '-')
			p++;
		if (p == start || n == NTOKENS)
			return TETHER_ERR_FORMAT;
		tok[n].s = start;
		tok[n].len = (size_t)(p - start);
		n++;
		if (p == end)
			break;
		while (p < end && is_blank(*p))
			p++;
		if (p < end && *p == '-') {
			p++;
			while (p < end && is_blank(*p))
				p++;
		}
	}
	*ntok = n;
	return 0;
}

/* Lower-cases one typed word into buf; false if it cannot be a list word. */
static bool fold_word(const struct token *t, char buf[WORD_MAX + 1])
{
	size_t i;

	memset(buf, 0, WORD_MAX + 1);
	if (t->len > WORD_MAX)
		return false;
	for (i = 0; i < t->len; i++) {
		char c = t->s[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c < 'a' || c > 'z')
			return false;
		buf[i] = c;
	}
	return true;
}

int tether_code_parse(const char *code, char *out, size_t outlen,
		      char *nameplate, size_t nplen, const char **why)
{
	struct token tok[NTOKENS];
	char norm[TETHER_CODE_MAX], word[WORD_MAX + 1];
	const char *start, *end, *msg = NULL;
	size_t ntok = 0, pos = 0, i;
	int err = TETHER_ERR_FORMAT;

	if (why)
		*why = NULL;
	if (!code || !out || !nameplate)
		return TETHER_ERR_INVALID;

	start = code;
	end = code + strlen(code);
	while (start < end && is_blank(*start))
		start++;
	while (end > start && is_blank(end[-1]))
		end--;
	if (start == end) {
		msg = why_empty;
		goto out;
	}
	if (split(start, end, tok, &ntok) || ntok != NTOKENS) {
		msg = why_shape;
		goto out;
	}
	if (!nameplate_ok(tok[0].s, tok[0].len)) {
		msg = why_nameplate;
		goto out;
	}
	/* Cannot overflow: 8 digits and three 6-letter words fit easily. */
	append(norm, sizeof(norm), &pos, tok[0].s, tok[0].len);
	for (i = 1; i < NTOKENS; i++) {
		if (!fold_word(&tok[i], word) || find_word(word) < 0) {
			msg = why_word;
			goto out;
		}
		append(norm, sizeof(norm), &pos, "-", 1);
		append(norm, sizeof(norm), &pos, word, strlen(word));
	}

	if (pos >= outlen || tok[0].len >= nplen) {
		err = TETHER_ERR_TOO_LARGE;
		goto out;
	}
	/*
	 * The nameplate is the start of norm too; copy from there, not from
	 * code, so that out may be the caller's input buffer.
	 */
	memcpy(nameplate, norm, tok[0].len);
	nameplate[tok[0].len] = '\0';
	memcpy(out, norm, pos);
	out[pos] = '\0';
	err = 0;
out:
	if (msg && why)
		*why = msg;
	tether_wipe(norm, sizeof(norm));
	tether_wipe(word, sizeof(word));
	return err;
}
