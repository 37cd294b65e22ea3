/*
 * The session-code word list: 256 words, one byte each.  Chosen to be
 * concrete, common and easy to say and spell: 4-6 lower-case letters, no
 * homophones we know of (no "beach"/"beech"), and every word has its own
 * first three letters, so no word is a prefix of another and three typed
 * letters are enough to tell them apart.  Kept sorted.  Changing the list
 * changes which codes are valid: old and new peers must agree.
 */
#include <tether/code.h>

/* Fixed-width rows: parsing compares against every row in equal time. */
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
