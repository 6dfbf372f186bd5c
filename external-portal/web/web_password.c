/*
 * Account passwords for the portal (see web_password.h). Passwords arrive
 * from browsers on the Internet: they are length-bounded, must be UTF-8,
 * and are only ever hashed or compared, never logged.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "log.h"
#include "xmalloc.h"
#include "web/web_text.h"
#include "web/web_password.h"

#define WEB_PASSWORD_SALT	16
#define WEB_PASSWORD_HASHLEN	32

const struct web_password_cost web_password_cost_default = { 3, 65536, 1 };

/*
 * Passwords everyone tries first, in the spirit of the public "most common
 * passwords" lists (keyboard walks, counting, words with digits, football
 * and love, the service's own name). Compared in lower case, also after
 * dropping trailing digits and punctuation ("Password123456!" is
 * "password").
 */
static const char *const web_password_common[] = {
	"password", "passw0rd", "p@ssw0rd", "p@ssword", "pa55word", "passwort",
	"motdepasse", "contrasena", "wachtwoord", "parola", "senha", "haslo",
	"salasana", "losenord", "adgangskode", "heslo", "jelszo",
	"qwerty", "qwertz", "azerty", "qwertyuiop", "qwertyuiopas",
	"qwertyuiopasdfgh", "asdfghjkl", "asdfghjkl;", "zxcvbnm", "zxcvbnm,./",
	"qwerasdfzxcv", "qazwsx", "qazwsxedc", "qazwsxedcrfv", "1qaz2wsx",
	"1qaz2wsx3edc", "1q2w3e4r", "1q2w3e4r5t", "1q2w3e4r5t6y", "q1w2e3r4",
	"q1w2e3r4t5", "zaq12wsx", "zaq1zaq1", "!qaz2wsx", "qwe123", "qweasd",
	"qweasdzxc", "asdasd", "asdf", "asdfasdf", "asdfjkl", "poiuytrewq",
	"mnbvcxz", "lkjhgfdsa", "1234qwer", "qwer1234", "abcd1234",
	"abc", "abcdef", "abcdefg", "abcdefgh", "abcdefghij", "abcdefghijkl",
	"abcdefghijklmnop", "abcabc", "abc123abc", "aaaaaa", "aaaaaaaaaaaa",
	"zzzzzzzzzzzz", "xxxxxxxxxxxx", "111111111111", "000000000000",
	"123123123123", "121212121212", "123321123321", "112233445566",
	"098765432109", "0987654321", "987654321", "9876543210",
	"123456789abc", "1234567890ab", "1234567890qw", "0123456789ab",
	"letmein", "letmeinnow", "letmein123", "welcome", "welcometo",
	"welcome1", "welcomehome", "iloveyou", "iloveyouforever", "iloveu",
	"loveyou", "lovely", "lovelove", "mylove", "ilovemymom", "ilovemyself",
	"princess", "princesa", "sunshine", "sunflower", "butterfly",
	"rainbow", "flower", "flowers", "blossom", "angel", "angels",
	"babygirl", "babyboy", "baby", "sweetheart", "sweetie", "honey",
	"cutie", "beautiful", "pretty", "lovers", "forever", "foreverlove",
	"dragon", "dragonball", "monkey", "tiger", "lion", "shadow", "master",
	"mastermind", "superman", "batman", "spiderman", "ironman", "pokemon",
	"starwars", "jedi", "skywalker", "matrix", "hunter", "hunter2",
	"ninja", "killer", "pepper", "ginger", "cookie", "chocolate",
	"cheese", "banana", "apple", "orange", "summer", "winter", "autumn",
	"spring", "january", "february", "december", "monday", "friday",
	"football", "soccer", "baseball", "basketball", "hockey", "golfer",
	"tennis", "liverpool", "chelsea", "arsenal", "manchester",
	"manutd", "barcelona", "realmadrid", "juventus", "bayern", "yankees",
	"cowboys", "steelers", "lakers", "ferrari", "mercedes", "porsche",
	"corvette", "mustang", "harley", "yamaha", "charlie", "michael",
	"jennifer", "jordan", "jordan23", "michelle", "daniel", "jessica",
	"ashley", "thomas", "robert", "andrew", "joshua", "matthew", "anthony",
	"william", "nicole", "hannah", "elizabeth", "alexander", "maximilian",
	"freedom", "whatever", "nothing", "secret", "secret123", "topsecret",
	"mysecret", "privacy", "private", "security", "secure", "securemail",
	"secretpassword", "mypassword", "newpassword", "changeme",
	"changeit", "default", "temp", "temporary", "test", "testing",
	"tester", "testtest", "guest", "user", "username", "login", "logon",
	"signin", "access", "accessdenied", "admin", "administrator", "root",
	"toor", "system", "sysadmin", "webmaster", "support", "helpdesk",
	"office", "company", "business", "computer", "internet", "online",
	"email", "mail", "webmail", "postern", "ciphermail", "portal",
	"passport", "trustno1", "trustnoone", "godisgood", "jesus",
	"jesuschrist", "blessed", "faith", "heaven", "hallelujah",
	"fuckyou", "fuckoff", "asshole", "bitch", "whatthehell", "letitbe",
	"iamthebest", "imthebest", "youcantguessit", "nopassword",
	"password1", "password12", "password123", "passwordpassword",
	"qwertyqwerty", "monkeymonkey", "loveloveLove", "helloworld",
	"hello", "hellohello", "hithere", "goodbye", "goodmorning",
	"starbucks", "google", "facebook", "youtube", "twitter", "instagram",
	"microsoft", "windows", "linux", "ubuntu", "apple123", "iphone",
	"samsung", "nokia", "playstation", "xbox", "nintendo", "minecraft",
	"fortnite", "roblox", "zelda", "mario", "sonic", "naruto", "onepiece",
	"metallica", "nirvana", "beatles", "eminem", "rockstar", "rocknroll",
	"guitar", "music", "musician", "dancer", "soccer10", "thunder",
	"lightning", "phoenix", "falcon", "eagle", "wolf", "bear", "panther",
	"jaguar", "cobra", "viper", "scorpion", "spider", "zeppelin",
	"mountain", "ocean", "river", "forest", "london", "paris", "berlin",
	"amsterdam", "newyork", "chicago", "canada", "america", "australia",
	"germany", "deutschland", "france", "italia", "espana", "nederland",
	"holland", "brasil", "mexico", "india", "china", "japan", "russia",
	"abcd", "abc123", "a1b2c3", "a1b2c3d4", "a1b2c3d4e5f6", "aa123456",
	"qq123456", "zxcv1234", "asdf1234", "pass", "pass1234", "passpass",
	"p4ssw0rd", "passw0rd1", "correcthorsebatterystaple",
	NULL
};

char *
web_password_hash(const char *pw, const struct web_password_cost *cost)
{
	unsigned char	 salt[WEB_PASSWORD_SALT];
	size_t		 enclen;
	char		*enc;
	int		 rc;

	if (cost == NULL)
		cost = &web_password_cost_default;
	if (strlen(pw) > WEB_PASSWORD_MAX_BYTES) {
		log_warnx("web_password_hash: password longer than %d bytes",
		    WEB_PASSWORD_MAX_BYTES);
		return NULL;
	}
	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		log_warnx("web_password_hash: RAND_bytes failed");
		return NULL;
	}
	enclen = argon2_encodedlen(cost->t_cost, cost->m_cost_kib,
	    cost->parallelism, sizeof(salt), WEB_PASSWORD_HASHLEN,
	    Argon2_id);
	enc = xmalloc(enclen);
	rc = argon2id_hash_encoded(cost->t_cost, cost->m_cost_kib,
	    cost->parallelism, pw, strlen(pw), salt, sizeof(salt),
	    WEB_PASSWORD_HASHLEN, enc, enclen);
	OPENSSL_cleanse(salt, sizeof(salt));
	if (rc != ARGON2_OK) {
		log_warnx("web_password_hash: %s", argon2_error_message(rc));
		free(enc);
		return NULL;
	}
	return enc;
}

int
web_password_verify(const char *encoded, const char *pw)
{
	/* argon2id_verify compares the tags in constant time. */
	if (strncmp(encoded, "$argon2id$", 10) != 0 ||
	    strlen(pw) > WEB_PASSWORD_MAX_BYTES)
		return 0;
	return argon2id_verify(encoded, pw, strlen(pw)) == ARGON2_OK;
}

int
web_password_needs_rehash(const char *encoded,
    const struct web_password_cost *cost)
{
	unsigned int	 v, m, t, p;

	if (cost == NULL)
		cost = &web_password_cost_default;
	if (sscanf(encoded, "$argon2id$v=%u$m=%u,t=%u,p=%u$", &v, &m, &t,
	    &p) != 4)
		return 1;
	return v != ARGON2_VERSION_NUMBER || m != cost->m_cost_kib ||
	    t != cost->t_cost || p != cost->parallelism;
}

static int
web_password_is_common(const char *lower)
{
	char	*base;
	size_t	 i, n;
	int	 found = 0;

	base = xstrdup(lower);
	n = strlen(base);
	while (n > 0 && (isdigit((unsigned char)base[n - 1]) ||
	    strchr("!?.*#$@&%-_+=~", base[n - 1]) != NULL))
		base[--n] = '\0';
	for (i = 0; web_password_common[i] != NULL; i++)
		if (strcasecmp(lower, web_password_common[i]) == 0 ||
		    (n > 0 && strcasecmp(base, web_password_common[i]) == 0))
			found = 1;
	/* No letter at all: counting, dates, phone numbers. */
	for (i = 0; lower[i] != '\0' && !isalpha((unsigned char)lower[i]) &&
	    (unsigned char)lower[i] < 0x80; i++)
		;
	if (lower[i] == '\0')
		found = 1;
	OPENSSL_cleanse(base, strlen(lower));
	free(base);
	return found;
}

const char *
web_password_check(const char *pw, const char *email, size_t min_len)
{
	size_t		 len = strlen(pw), chars = 0, i, n, distinct = 0;
	unsigned int	 cp, seen[4] = { 0 };
	const char	*at, *reason = NULL;
	char		*lower;

	if (min_len == 0)
		fatalx("web_password_check: no minimum length");
	if (len > WEB_PASSWORD_MAX_BYTES)
		return "password.too_long";
	if (!web_utf8_valid(pw, len))
		return "password.invalid";
	for (i = 0; i < len; i += n) {
		n = web_utf8_next(pw + i, len - i, &cp);
		if (cp < 0x20 || cp == 0x7f)
			return "password.invalid";
		chars++;
		if (distinct < 4) {
			size_t k;

			for (k = 0; k < distinct && seen[k] != cp; k++)
				;
			if (k == distinct)
				seen[distinct++] = cp;
		}
	}
	if (chars < min_len)
		return "password.too_short";
	if (distinct < 4)
		return "password.repeated";
	lower = xstrdup(pw);
	for (i = 0; i < len; i++)
		lower[i] = (char)tolower((unsigned char)lower[i]);
	if (email != NULL && *email != '\0') {
		at = strrchr(email, '@');
		if (strcasecmp(lower, email) == 0 || (at != NULL &&
		    (size_t)(at - email) == len &&
		    strncasecmp(lower, email, len) == 0))
			reason = "password.email";
	}
	if (reason == NULL && web_password_is_common(lower))
		reason = "password.common";
	OPENSSL_cleanse(lower, len);
	free(lower);
	return reason;
}

char *
web_password_rules_text(size_t min_len)
{
	char	*s;

	if (min_len == 0)
		fatalx("web_password_rules_text: no minimum length");
	xasprintf(&s, web_text_get("password.rules"), min_len);
	return s;
}
