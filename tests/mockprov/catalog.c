// SPDX-License-Identifier: MIT
/*
 * catalog.c: the mock provider's deterministic catalogue and its truth.
 *
 * Items: id 1..N exists unless id % 10 == 0; its fields hash from (seed, id).
 * Movies: id 1..M get a (title, year) pair c = (mul * (id - 1) + add) mod
 * space, an affine permutation of the space of pairs, so two movies share a
 * pair only when one is a "twin": a movie (about 1 in 40, never id 1) that
 * copies the pair of the movie before it, which makes the pair ambiguous.
 * A twin's own pair c(id) is then unused. Titles come from word lists in
 * five forms ("The Silent River", "Silent River", "The River of Rome",
 * "Silent River of Rome", "Return of the Silent River"); a few words carry a
 * comma, quotes or UTF-8 so that clients must encode and quote properly.
 * Search hashes the query to a title index, then inverts the permutation for
 * each candidate year: no per-movie memory, O(1) per (title, year).
 *
 * The offline helpers (--dump-movies-csv, --expect) answer through the same
 * functions as the server, so the truth cannot drift from what it serves.
 */
#include "mockprov.h"

#include <stdlib.h>
#include <string.h>

#define MP_COUNT(a) (sizeof(a) / sizeof((a)[0]))

enum {
    MP_SALT_MUL = 1,
    MP_SALT_ADD,
    MP_SALT_TWIN,
    MP_SALT_ITEM,
    MP_SALT_MOVIE,
    MP_SALT_POPULARITY,
    MP_SALT_ROW,
    MP_SALT_PICK,
};

#define MP_TWIN_ONE_IN 40 /* about 5% of movies share their pair */

static const char *const mp_adjectives[] = {
    "Silent",   "Crimson",   "Hidden",  "Broken",   "Golden",   "Frozen",
    "Burning",  "Distant",   "Eternal", "Forgotten", "Wild",    "Lonely",
    "Dark",     "Bright",    "Savage",  "Gentle",   "Restless", "Secret",
    "Shattered", "Electric", "Midnight", "Iron",    "Velvet",   "Hollow",
    "Scarlet",  "Silver",    "Bitter",  "Sweet",    "Final",    "Lost",
    "Last",     "Fading",    "Rising",  "Falling",  "Sleeping", "Wandering",
    "Empty",    "Endless",   "Fragile", "Furious",  "Quiet",    "Stolen",
    "Sacred",   "Cursed",    "Lucky",   "Crooked",  "Pale",     "Invisible",
    "Infinite", "Ancient",   "Northern", "Southern", "Emerald", "Obsidian",
    "Devil's",  "Na\xc3\xafve", "So-Called", "Runaway", "Paper", "Glass",
};

static const char *const mp_nouns[] = {
    "River",     "Garden",   "Mirror",    "Empire",    "Stranger", "Horizon",
    "Kingdom",   "Shadow",   "Harbor",    "Dream",     "Storm",    "Witness",
    "Promise",   "Island",   "Letter",    "Machine",   "Winter",   "Summer",
    "Voyage",    "Circus",   "Orchard",   "Lantern",   "Highway",  "Fortress",
    "Symphony",  "Detective", "Prophet",  "Heist",     "Frontier", "Carnival",
    "Lighthouse", "Compass", "Serpent",   "Falcon",    "Wolf",     "Tiger",
    "Mountain",  "Desert",   "Ocean",     "Forest",    "Station",  "Hotel",
    "Bridge",    "Tower",    "Palace",    "Canyon",    "Engine",   "Orbit",
    "Signal",    "\"Ghost\"", "Diary",    "Sonata",    "Requiem",  "Labyrinth",
    "Masquerade", "Pilgrim", "Outlaw",    "Crown",     "Dagger",   "Echo",
};

static const char *const mp_places[] = {
    "Paris",     "Rome",      "Tokyo",     "Berlin",   "Vienna",   "Lisbon",
    "Cairo",     "Istanbul",  "Havana",    "Shanghai", "Marrakesh", "Casablanca",
    "Babylon",   "Avalon",    "Atlantis",  "Eden",     "Mars",     "Venus",
    "the North", "the South", "the East",  "the West", "the Sea",  "the Stars",
    "the Moon",  "the Sun",   "the Dead",  "the Living", "Tomorrow", "Yesterday",
    "Dawn",      "Dusk",      "Paris, Texas", "S\xc3\xa3o Paulo", "Kyoto",
    "Oslo",      "Dublin",    "Prague",    "Madrid",   "Nowhere",
};

/* Nouns that never appear in the catalogue: titles of rows that must come
 * back not_found. */
static const char *const mp_fake_nouns[] = {
    "Xylophone", "Quokka",  "Spreadsheet", "Toaster",  "Umbrella",
    "Zeppelin",  "Walrus",  "Origami",     "Pineapple", "Accordion",
    "Dumpling",  "Teapot",  "Kazoo",       "Marmalade", "Bumblebee",
};

static const char *const mp_first_names[] = {
    "Ava",  "Ben",   "Clara", "Diego", "Elena",   "Farid",  "Greta",
    "Hiro", "Ines",  "Jonas", "Kenji", "Lena",    "Marco",  "Nadia",
    "Omar", "Paula", "Quentin", "Rosa", "Sven",   "Tara",   "Ugo",
    "Vera", "Wim",   "Xavier", "Yara", "Zoe",
};

static const char *const mp_last_names[] = {
    "Anders",  "Bianchi", "Castillo", "Dubois",   "Eriksen", "Fischer",
    "Garcia",  "Horvath", "Ivanova",  "Jensen",   "Kowalski", "Larsen",
    "Moreau",  "Nakamura", "Okafor",  "Petrov",   "Quinn",   "Rossi",
    "Schmidt", "Tanaka",  "Ueda",     "Varga",    "Weber",   "Xu",
    "Yilmaz",  "Zimmermann",
};

typedef struct mp_genre {
    int id;
    const char *name;
} mp_genre;

static const mp_genre mp_genres[] = {
    {28, "Action"},     {12, "Adventure"},  {16, "Animation"},
    {35, "Comedy"},     {80, "Crime"},      {99, "Documentary"},
    {18, "Drama"},      {10751, "Family"},  {14, "Fantasy"},
    {36, "History"},    {27, "Horror"},     {10402, "Music"},
    {9648, "Mystery"},  {10749, "Romance"}, {878, "Science Fiction"},
    {10770, "TV Movie"}, {53, "Thriller"},  {10752, "War"},
    {37, "Western"},
};

static const char *const mp_tags[] = {
    "new", "sale", "popular", "limited", "classic", "eco", "bundle", "gift",
};

/* ---- Titles ---- */

/* Joins up to five words with spaces into dst; returns the length. */
static size_t mp_catalog_join(char *dst, size_t cap, const char *const *w,
                              size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(w[i]);
        if (o + len + 2 > cap)
            break;
        if (i > 0)
            dst[o++] = ' ';
        memcpy(dst + o, w[i], len);
        o += len;
    }
    if (cap > 0)
        dst[o < cap ? o : cap - 1] = '\0';
    return o;
}

/* Writes title number t (0 <= t < titles) into dst and returns its length. */
size_t mp_catalog_title(const mp_catalog *cat, uint64_t t, char *dst,
                        size_t cap)
{
    const uint64_t na = MP_COUNT(mp_adjectives), nn = MP_COUNT(mp_nouns),
                   np = MP_COUNT(mp_places);
    const char *w[5];
    size_t n = 0;
    (void)cat;

    if (t < na * nn) {
        w[n++] = "The";
        w[n++] = mp_adjectives[t / nn];
        w[n++] = mp_nouns[t % nn];
    } else if ((t -= na * nn) < na * nn) {
        w[n++] = mp_adjectives[t / nn];
        w[n++] = mp_nouns[t % nn];
    } else if ((t -= na * nn) < nn * np) {
        w[n++] = "The";
        w[n++] = mp_nouns[t / np];
        w[n++] = "of";
        w[n++] = mp_places[t % np];
    } else if ((t -= nn * np) < na * nn * np) {
        w[n++] = mp_adjectives[t / (nn * np)];
        w[n++] = mp_nouns[(t / np) % nn];
        w[n++] = "of";
        w[n++] = mp_places[t % np];
    } else {
        t -= na * nn * np;
        t %= na * nn;
        w[n++] = "Return of the";
        w[n++] = mp_adjectives[t / nn];
        w[n++] = mp_nouns[t % nn];
    }
    return mp_catalog_join(dst, cap, w, n);
}

/* Returns the title index whose text equals q case-insensitively, or -1. */
static int64_t mp_catalog_title_find(const mp_catalog *cat, const char *q,
                                     size_t qn)
{
    char buf[MP_TITLE_MAX];
    if (qn == 0 || qn >= MP_TITLE_MAX)
        return -1;
    uint64_t i = mp_fnv1a(q, qn, 1) & cat->slot_mask;
    while (cat->slots[i] != 0) {
        uint64_t t = cat->slots[i] - 1;
        size_t n = mp_catalog_title(cat, t, buf, sizeof(buf));
        if (mp_mem_ieq(buf, n, q, qn))
            return (int64_t)t;
        i = (i + 1) & cat->slot_mask;
    }
    return -1;
}

/* ---- Construction ---- */

static uint64_t mp_gcd(uint64_t a, uint64_t b)
{
    while (b != 0) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* The inverse of a modulo m (gcd(a, m) == 1), by extended Euclid. */
static uint64_t mp_modinv(uint64_t a, uint64_t m)
{
    int64_t t = 0, nt = 1, r = (int64_t)m, nr = (int64_t)(a % m);
    while (nr != 0) {
        int64_t q = r / nr, tmp;
        tmp = t - q * nt;
        t = nt;
        nt = tmp;
        tmp = r - q * nr;
        r = nr;
        nr = tmp;
    }
    if (t < 0)
        t += (int64_t)m;
    return (uint64_t)t;
}

/* Builds the catalogue for N entities and a seed. Returns 0, or -1 with
 * `err` filled. The caller releases it with mp_catalog_close(). */
int mp_catalog_init(mp_catalog *cat, uint64_t n, uint64_t seed, char *err)
{
    const uint64_t na = MP_COUNT(mp_adjectives), nn = MP_COUNT(mp_nouns),
                   np = MP_COUNT(mp_places);
    char buf[MP_TITLE_MAX];

    memset(cat, 0, sizeof(*cat));
    if (n < 1 || n > 1000000000ULL) {
        mp_set_error(err, "catalog size must be in 1..1000000000");
        return -1;
    }
    cat->seed = seed;
    cat->items = n;
    cat->titles = 3 * na * nn + nn * np + na * nn * np;
    cat->space = cat->titles * MP_YEARS;
    cat->movies = n < cat->space ? n : cat->space;

    uint64_t m = mp_hash3(seed, 0, MP_SALT_MUL) % cat->space;
    if (m < 2)
        m = 2;
    while (mp_gcd(m, cat->space) != 1)
        m = m + 1 < cat->space ? m + 1 : 2;
    cat->mul = m;
    cat->mul_inv = mp_modinv(m, cat->space);
    cat->add = mp_hash3(seed, 0, MP_SALT_ADD) % cat->space;

    uint64_t size = 1024;
    while (size < cat->titles * 2)
        size *= 2;
    cat->slots = calloc(size, sizeof(cat->slots[0]));
    if (cat->slots == NULL) {
        mp_set_error(err, "out of memory for the title index");
        return -1;
    }
    cat->slot_mask = size - 1;
    for (uint64_t t = 0; t < cat->titles; t++) {
        size_t len = mp_catalog_title(cat, t, buf, sizeof(buf));
        if (mp_catalog_title_find(cat, buf, len) >= 0)
            continue; /* an equal title already indexed (none by design) */
        uint64_t i = mp_fnv1a(buf, len, 1) & cat->slot_mask;
        while (cat->slots[i] != 0)
            i = (i + 1) & cat->slot_mask;
        cat->slots[i] = (uint32_t)(t + 1);
    }
    return 0;
}

void mp_catalog_close(mp_catalog *cat)
{
    if (cat == NULL)
        return;
    free(cat->slots);
    cat->slots = NULL;
}

/* ---- Items ---- */

/* Parses an item id; returns 0 and sets *id when the item exists, else -1. */
int mp_catalog_item_id(const mp_catalog *cat, const char *s, size_t n,
                       uint64_t *id)
{
    uint64_t v;
    if (mp_parse_u64(s, n, UINT64_MAX, &v) != 0)
        return -1;
    if (v < 1 || v > cat->items || v % 10 == 0)
        return -1;
    *id = v;
    return 0;
}

void mp_catalog_item_json(const mp_catalog *cat, uint64_t id, mp_buf *b)
{
    uint64_t h = mp_hash3(cat->seed, id, MP_SALT_ITEM);
    uint64_t cents = 100 + h % 99900;
    size_t ntags = 1 + (h >> 20) % 3;
    size_t first = (h >> 24) % MP_COUNT(mp_tags);

    mp_buf_puts(b, "{\"id\":\"");
    mp_buf_u64(b, id);
    mp_buf_puts(b, "\",\"title\":\"Item ");
    mp_buf_u64(b, id);
    mp_buf_puts(b, "\",\"price\":");
    mp_buf_u64(b, cents / 100);
    mp_buf_printf(b, ".%02u,\"tags\":[", (unsigned)(cents % 100));
    for (size_t i = 0; i < ntags; i++) {
        if (i > 0)
            mp_buf_append(b, ",", 1);
        const char *tag = mp_tags[(first + i) % MP_COUNT(mp_tags)];
        mp_json_str(b, tag, strlen(tag));
    }
    mp_buf_puts(b, "]}");
}

/* ---- Movies ---- */

static int mp_catalog_twin(const mp_catalog *cat, uint64_t id)
{
    return id > 1 &&
           mp_hash3(cat->seed, id, MP_SALT_TWIN) % MP_TWIN_ONE_IN == 0;
}

static uint64_t mp_catalog_pair(const mp_catalog *cat, uint64_t id)
{
    return (cat->mul * ((id - 1) % cat->space) + cat->add) % cat->space;
}

/* Fills *m for movie `id`; returns 0, or -1 if there is no such movie. */
int mp_catalog_movie(const mp_catalog *cat, uint64_t id, mp_movie *m)
{
    if (id < 1 || id > cat->movies)
        return -1;
    uint64_t base = id;
    while (mp_catalog_twin(cat, base))
        base--;
    uint64_t c = mp_catalog_pair(cat, base);
    m->id = id;
    m->title = c % cat->titles;
    m->year = MP_YEAR_FIRST + (int)(c / cat->titles);
    return 0;
}

/* Parses a year filter: 0 when empty (no filter), -1 when invalid (matches
 * nothing), else the year. */
int mp_catalog_parse_year(const char *s, size_t n)
{
    uint64_t y;
    if (n == 0)
        return 0;
    if (mp_parse_u64(s, n, 9999, &y) != 0 || y == 0)
        return -1;
    return (int)y;
}

/* Finds the movies whose title equals q (case-insensitive) and, when year is
 * not 0, whose year equals it. Stores up to `cap` ids, ordered by year then
 * id, and returns the total number of matches. */
size_t mp_catalog_search(const mp_catalog *cat, const char *q, size_t qn,
                         int year, uint64_t *ids, size_t cap)
{
    int64_t t = mp_catalog_title_find(cat, q, qn);
    int y0 = MP_YEAR_FIRST, y1 = MP_YEAR_FIRST + MP_YEARS - 1;
    size_t total = 0;

    if (t < 0 || year < 0)
        return 0;
    if (year > 0) {
        if (year < y0 || year > y1)
            return 0;
        y0 = y1 = year;
    }
    for (int y = y0; y <= y1; y++) {
        uint64_t c = (uint64_t)t + cat->titles * (uint64_t)(y - MP_YEAR_FIRST);
        uint64_t id = (c + cat->space - cat->add) % cat->space * cat->mul_inv %
                          cat->space + 1;
        if (id > cat->movies || mp_catalog_twin(cat, id))
            continue;
        do {
            if (total < cap)
                ids[total] = id;
            total++;
            id++;
        } while (id <= cat->movies && mp_catalog_twin(cat, id));
    }
    return total;
}

static void mp_catalog_date_json(const mp_catalog *cat, const mp_movie *m,
                                 mp_buf *b)
{
    uint64_t h = mp_hash3(cat->seed, m->id, MP_SALT_MOVIE);
    mp_buf_printf(b, "\"%04d-%02u-%02u\"", m->year,
                  (unsigned)(1 + (h >> 32) % 12),
                  (unsigned)(1 + (h >> 40) % 28));
}

static void mp_catalog_popularity_json(const mp_catalog *cat, uint64_t id,
                                       mp_buf *b)
{
    uint64_t h = mp_hash3(cat->seed, id, MP_SALT_POPULARITY) % 100000;
    mp_buf_u64(b, h / 1000);
    mp_buf_printf(b, ".%03u", (unsigned)(h % 1000));
}

void mp_catalog_movie_json(const mp_catalog *cat, const mp_movie *m, mp_buf *b)
{
    char title[MP_TITLE_MAX], director[64];
    uint64_t h = mp_hash3(cat->seed, m->id, MP_SALT_MOVIE);
    size_t tn = mp_catalog_title(cat, m->title, title, sizeof(title));
    const size_t ng = MP_COUNT(mp_genres);
    size_t genres[3], count = 1 + h % 3;

    genres[0] = (h >> 8) % ng;
    genres[1] = (genres[0] + 1 + (h >> 16) % (ng - 1)) % ng;
    genres[2] = (h >> 24) % ng;
    while (genres[2] == genres[0] || genres[2] == genres[1])
        genres[2] = (genres[2] + 1) % ng;
    int dn = snprintf(director, sizeof(director), "%s %s",
                      mp_first_names[(h >> 48) % MP_COUNT(mp_first_names)],
                      mp_last_names[(h >> 56) % MP_COUNT(mp_last_names)]);
    size_t dlen = dn > 0 ? (size_t)dn : 0;

    mp_buf_puts(b, "{\"id\":");
    mp_buf_u64(b, m->id);
    mp_buf_puts(b, ",\"title\":");
    mp_json_str(b, title, tn);
    mp_buf_printf(b, ",\"imdb_id\":\"tt%07llu\"", (unsigned long long)m->id);
    mp_buf_puts(b, ",\"original_language\":\"en\",\"release_date\":");
    mp_catalog_date_json(cat, m, b);
    mp_buf_printf(b, ",\"runtime\":%u,\"popularity\":",
                  (unsigned)(75 + (h >> 4) % 106));
    mp_catalog_popularity_json(cat, m->id, b);
    mp_buf_puts(b, ",\"genres\":[");
    for (size_t i = 0; i < count; i++)
        mp_buf_printf(b, "%s{\"id\":%d,\"name\":\"%s\"}", i ? "," : "",
                      mp_genres[genres[i]].id, mp_genres[genres[i]].name);
    mp_buf_puts(b, "],\"director\":");
    mp_json_str(b, director, dlen);
    mp_buf_puts(b, ",\"credits\":{\"crew\":[{\"job\":\"Director\",\"name\":");
    mp_json_str(b, director, dlen);
    mp_buf_puts(b, "}]}}");
}

void mp_catalog_search_json(const mp_catalog *cat, const char *q, size_t qn,
                            int year, mp_buf *b)
{
    uint64_t ids[MP_SEARCH_MAX_RESULTS];
    char title[MP_TITLE_MAX];
    size_t total = mp_catalog_search(cat, q, qn, year, ids, MP_COUNT(ids));
    size_t shown = total < MP_COUNT(ids) ? total : MP_COUNT(ids);

    mp_buf_puts(b, "{\"page\":1,\"results\":[");
    for (size_t i = 0; i < shown; i++) {
        mp_movie m;
        if (mp_catalog_movie(cat, ids[i], &m) != 0)
            continue;
        size_t tn = mp_catalog_title(cat, m.title, title, sizeof(title));
        mp_buf_puts(b, i ? ",{\"id\":" : "{\"id\":");
        mp_buf_u64(b, m.id);
        mp_buf_puts(b, ",\"title\":");
        mp_json_str(b, title, tn);
        mp_buf_puts(b, ",\"release_date\":");
        mp_catalog_date_json(cat, &m, b);
        mp_buf_puts(b, ",\"popularity\":");
        mp_catalog_popularity_json(cat, m.id, b);
        mp_buf_puts(b, "}");
    }
    mp_buf_puts(b, "],\"total_results\":");
    mp_buf_u64(b, total);
    mp_buf_puts(b, ",\"total_pages\":1}");
}

/* ---- Truth: the CSV dump and the expected outcomes ---- */

static void mp_csv_field(FILE *out, const char *s, size_t n)
{
    int quote = n > 0 && (s[0] == ' ' || s[n - 1] == ' ');
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (!quote) {
        fwrite(s, 1, n, out);
        return;
    }
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            fputc('"', out);
        fputc(s[i], out);
    }
    fputc('"', out);
}

/* Makes a title that is not in the catalogue at all, for row r. */
static size_t mp_catalog_fake_title(const mp_catalog *cat, uint64_t r,
                                    char *dst, size_t cap)
{
    uint64_t h = mp_hash3(cat->seed, r, MP_SALT_PICK);
    size_t n = 0;
    for (int attempt = 0; attempt < 16; attempt++, h = mp_mix64(h)) {
        const char *w[4];
        size_t k = 0;
        const char *adj = mp_adjectives[(h >> 8) % MP_COUNT(mp_adjectives)];
        const char *fake = mp_fake_nouns[(h >> 16) % MP_COUNT(mp_fake_nouns)];
        switch (h % 3) {
        case 0: w[k++] = "The"; w[k++] = adj; w[k++] = fake; break;
        case 1:
            w[k++] = fake;
            w[k++] = "of";
            w[k++] = mp_places[(h >> 24) % MP_COUNT(mp_places)];
            break;
        default: w[k++] = adj; w[k++] = fake; break;
        }
        n = mp_catalog_join(dst, cap, w, k);
        if (mp_catalog_search(cat, dst, n, 0, NULL, 0) == 0)
            break;
    }
    return n;
}

/* Picks the movie for CSV row r: an ambiguous one when `ambiguous` (if the
 * catalogue has any near the starting point), else one with a unique pair. */
static void mp_catalog_pick(const mp_catalog *cat, uint64_t r, int ambiguous,
                            mp_movie *m)
{
    uint64_t h = mp_hash3(cat->seed, r, MP_SALT_PICK);
    uint64_t id = 1 + h % cat->movies;
    mp_catalog_movie(cat, id, m);
    if (ambiguous) {
        for (uint64_t step = 0; step < 4096; step++) {
            uint64_t j = 1 + (id - 1 + step) % cat->movies;
            if (mp_catalog_twin(cat, j)) {
                mp_catalog_movie(cat, j, m);
                return;
            }
        }
    }
    for (uint64_t step = 0; step < 64; step++) {
        uint64_t j = 1 + (id - 1 + step) % cat->movies;
        char title[MP_TITLE_MAX];
        mp_movie c;
        mp_catalog_movie(cat, j, &c);
        size_t n = mp_catalog_title(cat, c.title, title, sizeof(title));
        if (mp_catalog_search(cat, title, n, c.year, NULL, 0) == 1) {
            *m = c;
            return;
        }
    }
}

/* Writes the CSV `id,title,year` of `rows` entities: about 5% titles that do
 * not exist, 5% ambiguous (title, year) pairs, the rest unique movies.
 * Returns 0, or -1 on a write error. */
int mp_catalog_dump_csv(const mp_catalog *cat, uint64_t rows, FILE *out)
{
    char title[MP_TITLE_MAX];
    fputs("id,title,year\n", out);
    for (uint64_t r = 1; r <= rows; r++) {
        uint64_t k = mp_hash3(cat->seed, r, MP_SALT_ROW) % 100;
        size_t n;
        int year;
        if (k < 5) {
            n = mp_catalog_fake_title(cat, r, title, sizeof(title));
            year = MP_YEAR_FIRST + (int)((mp_hash3(cat->seed, r, MP_SALT_ROW) >>
                                          32) % MP_YEARS);
        } else {
            mp_movie m;
            mp_catalog_pick(cat, r, k < 10, &m);
            n = mp_catalog_title(cat, m.title, title, sizeof(title));
            year = m.year;
        }
        fprintf(out, "%llu,", (unsigned long long)r);
        mp_csv_field(out, title, n);
        fprintf(out, ",%d\n", year);
    }
    return fflush(out) == 0 && !ferror(out) ? 0 : -1;
}

static void mp_trim(const char **s, size_t *n)
{
    while (*n > 0 && ((*s)[0] == ' ' || (*s)[0] == '\t' || (*s)[0] == '\r')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' ||
                      (*s)[*n - 1] == '\r' || (*s)[*n - 1] == '\n'))
        (*n)--;
}

/* Reads ids, one per line, and prints `ID updated|not_found` for each. */
int mp_catalog_expect_items(const mp_catalog *cat, FILE *in, FILE *out)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, in)) >= 0) {
        const char *s = line;
        size_t n = (size_t)got;
        uint64_t id;
        mp_trim(&s, &n);
        if (n == 0)
            continue;
        fwrite(s, 1, n, out);
        fputs(mp_catalog_item_id(cat, s, n, &id) == 0 ? " updated\n"
                                                      : " not_found\n",
              out);
    }
    free(line);
    return fflush(out) == 0 && !ferror(out) ? 0 : -1;
}

#define MP_CSV_FIELDS 16

/* Reads one RFC 4180 record: its fields go back to back into rec, with
 * their offsets and lengths in off/len (at most MP_CSV_FIELDS). Returns the
 * number of fields, or 0 at the end of input. */
static size_t mp_csv_record(FILE *in, mp_buf *rec, size_t *off, size_t *len)
{
    size_t nf = 0;
    int ch, quoted = 0, any = 0, field_start = 1;
    rec->len = 0;
    off[0] = 0;
    for (;;) {
        ch = fgetc(in);
        if (ch == EOF)
            break;
        any = 1;
        if (quoted) {
            if (ch == '"') {
                int next = fgetc(in);
                if (next == '"') {
                    mp_buf_append(rec, "\"", 1);
                    continue;
                }
                quoted = 0;
                if (next == EOF)
                    break;
                ch = next;
            } else {
                char c = (char)ch;
                mp_buf_append(rec, &c, 1);
                continue;
            }
        }
        if (ch == '"' && field_start) {
            quoted = 1;
            field_start = 0;
            continue;
        }
        field_start = 0;
        if (ch == ',' || ch == '\n') {
            if (nf < MP_CSV_FIELDS) {
                len[nf] = rec->len - off[nf];
                nf++;
                if (nf < MP_CSV_FIELDS)
                    off[nf] = rec->len;
            }
            field_start = 1;
            if (ch == '\n')
                return nf;
            continue;
        }
        if (ch == '\r')
            continue;
        char c = (char)ch;
        mp_buf_append(rec, &c, 1);
    }
    if (!any)
        return 0;
    if (nf < MP_CSV_FIELDS) {
        len[nf] = rec->len - off[nf];
        nf++;
    }
    return nf;
}

/* Reads the CSV written by --dump-movies-csv (any CSV with a header naming
 * `id`, `title` and `year` works) and prints `ID updated|conflicts|not_found`
 * per row: the number of exact matches of a search by title and year. */
int mp_catalog_expect_movies(const mp_catalog *cat, FILE *in, FILE *out)
{
    mp_buf rec;
    size_t off[MP_CSV_FIELDS], len[MP_CSV_FIELDS], nf;
    size_t col_id = 0, col_title = 1, col_year = 2;
    int first = 1;

    mp_buf_init(&rec);
    mp_buf_reserve(&rec, 256);
    while ((nf = mp_csv_record(in, &rec, off, len)) > 0) {
        const char *f[MP_CSV_FIELDS];
        for (size_t i = 0; i < nf; i++)
            f[i] = rec.data + off[i];
        if (first) {
            first = 0;
            if (mp_mem_ieq(f[0], len[0], "id", 2) ||
                mp_mem_ieq(f[0], len[0], "title", 5)) {
                col_year = SIZE_MAX;
                col_title = SIZE_MAX;
                col_id = SIZE_MAX;
                for (size_t i = 0; i < nf; i++) {
                    if (mp_mem_ieq(f[i], len[i], "id", 2))
                        col_id = i;
                    else if (mp_mem_ieq(f[i], len[i], "title", 5))
                        col_title = i;
                    else if (mp_mem_ieq(f[i], len[i], "year", 4))
                        col_year = i;
                }
                continue;
            }
        }
        if (nf == 1 && len[0] == 0)
            continue; /* blank line */
        const char *id = col_id < nf ? f[col_id] : "";
        size_t idn = col_id < nf ? len[col_id] : 0;
        const char *title = col_title < nf ? f[col_title] : "";
        size_t tn = col_title < nf ? len[col_title] : 0;
        int year = col_year < nf ? mp_catalog_parse_year(f[col_year],
                                                         len[col_year])
                                 : 0;
        size_t matches = mp_catalog_search(cat, title, tn, year, NULL, 0);
        fwrite(id, 1, idn, out);
        fputs(matches == 0   ? " not_found\n"
              : matches == 1 ? " updated\n"
                             : " conflicts\n",
              out);
    }
    mp_buf_free(&rec);
    return fflush(out) == 0 && !ferror(out) ? 0 : -1;
}
