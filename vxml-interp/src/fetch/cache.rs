//! The HTTP cache behind [`super::HttpFetcher`] (RFC 9111): GET responses keyed by URL, shared by
//! every session of the process, bounded in bytes with least-recently-used eviction.
//!
//! Sans-IO: every decision takes `now`, so expiry is tested with a hand-moved clock. The cache
//! is the process's own (a private cache in RFC 9111 terms), with three rules that keep one
//! caller's answers from reaching another caller:
//! - a response carrying `Set-Cookie` is not stored (a hit would not set the cookie for the next
//!   session, and replaying it would hand one caller's session cookie to another);
//! - a `private` response is stored only when the request carried no `Cookie`: the URL alone
//!   then chose it, so it cannot be personalised;
//! - `Vary` is honoured for the request headers we send (in practice `Cookie`).
//!
//! Heuristic freshness (RFC 9111 §4.2.2) is not used: a response without `max-age` or `Expires`
//! is stored only if it has a validator, and is revalidated on every use.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use reqwest::header::{
    AGE, CACHE_CONTROL, DATE, ETAG, EXPIRES, HeaderMap, HeaderName, HeaderValue, LAST_MODIFIED,
    SET_COOKIE, VARY,
};

/// `delta-seconds` saturate here (RFC 9111 §1.2.2).
const MAX_DELTA: u64 = 1 << 31;

/// Bytes charged per entry on top of its body, URL and headers (maps, times, order keys).
const ENTRY_OVERHEAD: usize = 256;

/// The response headers an entry keeps: those that decide freshness and revalidation.
const KEPT: [HeaderName; 7] = [CACHE_CONTROL, DATE, EXPIRES, AGE, ETAG, LAST_MODIFIED, VARY];

/// A stored response, as a hit or a 304 hands it out.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    /// The stored status (200 or 203).
    pub(crate) status: u16,
    /// The stored `Content-Type`.
    pub(crate) content_type: Option<String>,
    /// The body, shared so that a hit copies it outside the lock.
    pub(crate) body: Arc<[u8]>,
}

/// The validators of a stale entry, for a conditional request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Validators {
    /// `ETag`, sent back as `If-None-Match`.
    pub(crate) etag: Option<HeaderValue>,
    /// `Last-Modified`, sent back as `If-Modified-Since`.
    pub(crate) last_modified: Option<HeaderValue>,
}

/// What the cache can do for a GET.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// Usable as is: no request.
    Hit(Stored),
    /// Usable once the origin confirms it (304).
    Revalidate(Validators),
    /// Nothing usable: a plain request.
    Miss,
}

/// The request's own cache directives: VoiceXML `maxage` and `maxstale` (VoiceXML 2.1 §6.1.2).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Wants {
    /// The oldest copy the document accepts; zero always revalidates.
    pub(crate) max_age: Option<Duration>,
    /// How long past its expiry a copy may still be used.
    pub(crate) max_stale: Option<Duration>,
}

/// A response to offer to the cache.
#[derive(Debug)]
pub(crate) struct Response<'a> {
    /// Its status.
    pub(crate) status: u16,
    /// All its headers.
    pub(crate) headers: &'a HeaderMap,
    /// Its `Content-Type`.
    pub(crate) content_type: Option<&'a str>,
    /// Its body.
    pub(crate) body: &'a [u8],
    /// When the request was sent.
    pub(crate) request_time: SystemTime,
    /// When the response head arrived.
    pub(crate) response_time: SystemTime,
}

/// The process's HTTP cache: a byte budget and the entries, least recently used first out.
pub(crate) struct HttpCache {
    budget: usize,
    lru: Mutex<Lru>,
}

impl std::fmt::Debug for HttpCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lru = self.lock();
        f.debug_struct("HttpCache")
            .field("budget", &self.budget)
            .field("bytes", &lru.bytes)
            .field("entries", &lru.entries.len())
            .finish()
    }
}

impl HttpCache {
    /// An empty cache holding at most `budget` bytes.
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget,
            lru: Mutex::new(Lru::default()),
        }
    }

    /// What the entry for `key` can do for a GET that would send `request` headers.
    pub(crate) fn lookup(
        &self,
        key: &str,
        request: &HeaderMap,
        wants: Wants,
        now: SystemTime,
    ) -> Lookup {
        let mut lru = self.lock();
        let Some(entry) = lru.entries.get(key) else {
            return Lookup::Miss;
        };
        if !entry.selected_by(request) {
            return Lookup::Miss;
        }
        let usable = entry.usable(wants, now);
        let result = if usable {
            Lookup::Hit(entry.stored())
        } else {
            let validators = entry.validators();
            if validators.etag.is_none() && validators.last_modified.is_none() {
                return Lookup::Miss;
            }
            Lookup::Revalidate(validators)
        };
        lru.touch(key);
        result
    }

    /// Stores a GET response if RFC 9111 §3 and the rules above allow it; otherwise drops any
    /// older entry for `key` (the origin has moved on).
    pub(crate) fn store(&self, key: &str, request: &HeaderMap, response: &Response<'_>) {
        if !storable(request, response.status, response.headers) {
            self.invalidate(key);
            return;
        }
        let entry = Entry {
            status: response.status,
            content_type: response.content_type.map(str::to_owned),
            body: Arc::from(response.body),
            headers: kept(response.headers),
            selecting: selecting(response.headers, request),
            request_time: response.request_time,
            response_time: response.response_time,
            size: 0,
            tick: 0,
        };
        self.lock().insert(key, entry, self.budget);
    }

    /// Applies a 304 to the entry for `key` (RFC 9111 §4.3.4) and hands out its body; `None` when
    /// the entry went away meanwhile (evicted for another session's response).
    pub(crate) fn refresh(
        &self,
        key: &str,
        not_modified: &HeaderMap,
        request_time: SystemTime,
        response_time: SystemTime,
    ) -> Option<Stored> {
        let mut lru = self.lock();
        let mut entry = lru.remove(key)?;
        for name in KEPT {
            if not_modified.contains_key(&name) {
                entry.headers.remove(&name);
                for value in not_modified.get_all(&name) {
                    entry.headers.append(name.clone(), value.clone());
                }
            }
        }
        entry.request_time = request_time;
        entry.response_time = response_time;
        let stored = entry.stored();
        if !directives(&entry.headers).no_store {
            lru.insert(key, entry, self.budget);
        }
        Some(stored)
    }

    /// Forgets `key`: an unsafe method (POST) went through to it (RFC 9111 §4.4).
    pub(crate) fn invalidate(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Bytes held, for tests.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> MutexGuard<'_, Lru> {
        // No code panics while holding the lock; should one ever, the map is still consistent
        // enough to serve (each mutation is a few field updates).
        self.lru.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The entries, their byte total, and their use order (`tick` → key, oldest first).
#[derive(Debug, Default)]
struct Lru {
    entries: HashMap<String, Entry>,
    order: BTreeMap<u64, String>,
    ticks: u64,
    bytes: usize,
}

impl Lru {
    fn touch(&mut self, key: &str) {
        if let Some(entry) = self.entries.get_mut(key) {
            self.order.remove(&entry.tick);
            self.ticks += 1;
            entry.tick = self.ticks;
            self.order.insert(entry.tick, key.to_owned());
        }
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.order.remove(&entry.tick);
        self.bytes = self.bytes.saturating_sub(entry.size);
        Some(entry)
    }

    /// Inserts, evicting the least recently used entries to stay within `budget`. An entry
    /// bigger than the whole budget is not kept.
    fn insert(&mut self, key: &str, mut entry: Entry, budget: usize) {
        self.remove(key);
        entry.size = entry.footprint(key);
        if entry.size > budget {
            return;
        }
        while self.bytes.saturating_add(entry.size) > budget {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(old) = self.entries.remove(&oldest) {
                self.bytes = self.bytes.saturating_sub(old.size);
            }
        }
        self.ticks += 1;
        entry.tick = self.ticks;
        self.order.insert(entry.tick, key.to_owned());
        self.bytes = self.bytes.saturating_add(entry.size);
        self.entries.insert(key.to_owned(), entry);
    }
}

#[derive(Debug)]
struct Entry {
    status: u16,
    content_type: Option<String>,
    body: Arc<[u8]>,
    /// The [`KEPT`] response headers.
    headers: HeaderMap,
    /// The request headers the response's `Vary` names, as they were sent.
    selecting: Vec<(HeaderName, Option<HeaderValue>)>,
    request_time: SystemTime,
    response_time: SystemTime,
    /// Bytes charged to the budget.
    size: usize,
    /// Position in [`Lru::order`].
    tick: u64,
}

impl Entry {
    fn footprint(&self, key: &str) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len())
            .sum();
        let selecting: usize = self
            .selecting
            .iter()
            .map(|(n, v)| n.as_str().len() + v.as_ref().map_or(0, HeaderValue::len))
            .sum();
        ENTRY_OVERHEAD
            .saturating_add(self.body.len())
            .saturating_add(2 * key.len())
            .saturating_add(self.content_type.as_ref().map_or(0, String::len))
            .saturating_add(headers)
            .saturating_add(selecting)
    }

    fn stored(&self) -> Stored {
        Stored {
            status: self.status,
            content_type: self.content_type.clone(),
            body: Arc::clone(&self.body),
        }
    }

    fn validators(&self) -> Validators {
        Validators {
            etag: self.headers.get(ETAG).cloned(),
            last_modified: self.headers.get(LAST_MODIFIED).cloned(),
        }
    }

    /// Whether a request sending `request` headers may use this entry (RFC 9111 §4.1).
    fn selected_by(&self, request: &HeaderMap) -> bool {
        self.selecting
            .iter()
            .all(|(name, value)| request.get(name) == value.as_ref())
    }

    /// Whether the entry may be used without asking the origin (RFC 9111 §4.2, §5.2.1, §5.2.2).
    fn usable(&self, wants: Wants, now: SystemTime) -> bool {
        let directives = directives(&self.headers);
        if directives.no_cache {
            return false;
        }
        let age = current_age(&self.headers, self.request_time, self.response_time, now);
        match wants.max_age {
            // VoiceXML's maxage=0 is "always revalidate", even for an entry of age zero.
            Some(max_age) if max_age.is_zero() || age > max_age => return false,
            _ => {}
        }
        let lifetime = freshness_lifetime(&self.headers, &directives, self.response_time);
        if lifetime > age {
            return true;
        }
        if directives.must_revalidate {
            return false;
        }
        wants
            .max_stale
            .is_some_and(|max_stale| age.saturating_sub(lifetime) <= max_stale)
    }
}

/// Whether a GET response may be stored (RFC 9111 §3, plus the module's rules).
fn storable(request: &HeaderMap, status: u16, headers: &HeaderMap) -> bool {
    if !matches!(status, 200 | 203) || headers.contains_key(SET_COOKIE) {
        return false;
    }
    let directives = directives(headers);
    if directives.no_store || (directives.private && request.contains_key(reqwest::header::COOKIE))
    {
        return false;
    }
    if vary_names(headers).any(|name| name == "*") {
        return false;
    }
    // Without an expiry or a validator a stored copy could never be used: no heuristics here.
    directives.max_age.is_some()
        || headers.contains_key(EXPIRES)
        || headers.contains_key(ETAG)
        || headers.contains_key(LAST_MODIFIED)
}

fn kept(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in KEPT {
        for value in headers.get_all(&name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

fn vary_names(headers: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
}

fn selecting(headers: &HeaderMap, request: &HeaderMap) -> Vec<(HeaderName, Option<HeaderValue>)> {
    vary_names(headers)
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .map(|name| {
            let value = request.get(&name).cloned();
            (name, value)
        })
        .collect()
}

/// The `Cache-Control` response directives the cache obeys.
#[derive(Debug, Default, PartialEq, Eq)]
struct Directives {
    max_age: Option<Duration>,
    no_cache: bool,
    no_store: bool,
    must_revalidate: bool,
    private: bool,
}

fn directives(headers: &HeaderMap) -> Directives {
    let mut d = Directives::default();
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(text) = value.to_str() else {
            continue;
        };
        for item in split_list(text) {
            let (name, arg) = match item.split_once('=') {
                Some((name, arg)) => (name.trim(), Some(unquote(arg.trim()))),
                None => (item.trim(), None),
            };
            match name.to_ascii_lowercase().as_str() {
                "max-age" => {
                    // A malformed max-age makes the response stale (RFC 9111 §4.2.1); two
                    // of them, the shorter wins.
                    let secs = arg.and_then(delta_seconds).unwrap_or(0);
                    let max_age = Duration::from_secs(secs);
                    d.max_age = Some(d.max_age.map_or(max_age, |m| m.min(max_age)));
                }
                // The qualified forms (`no-cache="Set-Cookie"`) are treated as unqualified:
                // stricter, and allowed (RFC 9111 §5.2.2.4).
                "no-cache" => d.no_cache = true,
                "no-store" => d.no_store = true,
                // proxy-revalidate is for shared caches; obeying it too is only stricter.
                "must-revalidate" | "proxy-revalidate" => d.must_revalidate = true,
                "private" => d.private = true,
                _ => {}
            }
        }
    }
    d
}

/// Splits a comma-separated header list, keeping commas inside quoted strings.
fn split_list(text: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&text[start..]);
    items.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

fn unquote(text: &str) -> &str {
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

/// `delta-seconds` (RFC 9111 §1.2.2): digits only, saturating at 2^31.
fn delta_seconds(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse::<u64>().unwrap_or(MAX_DELTA).min(MAX_DELTA))
}

fn http_date(headers: &HeaderMap, name: &HeaderName) -> Option<SystemTime> {
    let text = headers.get(name)?.to_str().ok()?;
    httpdate::parse_http_date(text.trim()).ok()
}

/// The freshness lifetime (RFC 9111 §4.2.1): `max-age`, else `Expires` − `Date`, else zero.
fn freshness_lifetime(
    headers: &HeaderMap,
    directives: &Directives,
    response_time: SystemTime,
) -> Duration {
    if let Some(max_age) = directives.max_age {
        return max_age;
    }
    if !headers.contains_key(EXPIRES) {
        return Duration::ZERO;
    }
    // An invalid Expires ("0", "-1") means already expired.
    let Some(expires) = http_date(headers, &EXPIRES) else {
        return Duration::ZERO;
    };
    let date = http_date(headers, &DATE).unwrap_or(response_time);
    expires.duration_since(date).unwrap_or(Duration::ZERO)
}

/// The current age (RFC 9111 §4.2.3).
fn current_age(
    headers: &HeaderMap,
    request_time: SystemTime,
    response_time: SystemTime,
    now: SystemTime,
) -> Duration {
    let since = |later: SystemTime, earlier: SystemTime| {
        later.duration_since(earlier).unwrap_or(Duration::ZERO)
    };
    let age_value = headers
        .get(AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| delta_seconds(v.trim()))
        .map_or(Duration::ZERO, Duration::from_secs);
    let apparent_age =
        http_date(headers, &DATE).map_or(Duration::ZERO, |date| since(response_time, date));
    let response_delay = since(response_time, request_time);
    let corrected_age_value = age_value.saturating_add(response_delay);
    let corrected_initial_age = apparent_age.max(corrected_age_value);
    let resident_time = since(now, response_time);
    corrected_initial_age.saturating_add(resident_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::from_secs(1_700_000_000);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + T0 + Duration::from_secs(secs)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn store(cache: &HttpCache, key: &str, response_headers: &HeaderMap, body: &[u8], t: u64) {
        cache.store(
            key,
            &HeaderMap::new(),
            &Response {
                status: 200,
                headers: response_headers,
                content_type: Some("text/plain"),
                body,
                request_time: at(t),
                response_time: at(t),
            },
        );
    }

    fn lookup(cache: &HttpCache, key: &str, wants: Wants, t: u64) -> Lookup {
        cache.lookup(key, &HeaderMap::new(), wants, at(t))
    }

    fn is_hit(l: &Lookup) -> bool {
        matches!(l, Lookup::Hit(_))
    }

    #[test]
    fn cache_control_directives_parse() {
        let h = headers(&[
            ("cache-control", "Max-Age=60, no-cache=\"set-cookie, x\""),
            ("cache-control", "must-revalidate, private"),
        ]);
        assert_eq!(
            directives(&h),
            Directives {
                max_age: Some(Duration::from_secs(60)),
                no_cache: true,
                no_store: false,
                must_revalidate: true,
                private: true,
            }
        );
        let h = headers(&[("cache-control", "max-age=\"30\", no-store, max-age=10")]);
        let d = directives(&h);
        assert_eq!(d.max_age, Some(Duration::from_secs(10)));
        assert!(d.no_store);
        // Malformed and huge values: stale, and saturated at 2^31 (RFC 9111 §1.2.2).
        let bad = headers(&[("cache-control", "max-age=soon")]);
        assert_eq!(directives(&bad).max_age, Some(Duration::ZERO));
        let huge = headers(&[("cache-control", "max-age=99999999999999999999999")]);
        assert_eq!(
            directives(&huge).max_age,
            Some(Duration::from_secs(MAX_DELTA))
        );
    }

    #[test]
    fn expires_minus_date_is_the_lifetime_and_bad_expires_is_expired() {
        let date = httpdate::fmt_http_date(at(0));
        let expires = httpdate::fmt_http_date(at(120));
        let h = headers(&[("date", &date), ("expires", &expires)]);
        let d = directives(&h);
        assert_eq!(freshness_lifetime(&h, &d, at(5)), Duration::from_secs(120));
        // Without Date, the time the response arrived stands in for it.
        let h = headers(&[("expires", &expires)]);
        assert_eq!(freshness_lifetime(&h, &d, at(20)), Duration::from_secs(100));
        let h = headers(&[("expires", "0")]);
        assert_eq!(freshness_lifetime(&h, &d, at(0)), Duration::ZERO);
        // max-age wins over Expires.
        let h = headers(&[("expires", &expires), ("cache-control", "max-age=5")]);
        assert_eq!(
            freshness_lifetime(&h, &directives(&h), at(0)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn age_counts_the_age_header_the_date_and_the_residence() {
        // RFC 9111 §4.2.3: corrected_initial_age = max(apparent_age, age_value + delay).
        let date = httpdate::fmt_http_date(at(0));
        let h = headers(&[("date", &date), ("age", "30")]);
        // Sent at 8, answered at 10 (apparent age 10, corrected age value 32), used at 15.
        assert_eq!(
            current_age(&h, at(8), at(10), at(15)),
            Duration::from_secs(37)
        );
        // A Date in the future and a garbled Age count as zero.
        let future = httpdate::fmt_http_date(at(100));
        let h = headers(&[("date", &future), ("age", "-3")]);
        assert_eq!(
            current_age(&h, at(10), at(10), at(12)),
            Duration::from_secs(2)
        );
        // A clock that went backwards never underflows.
        assert_eq!(current_age(&h, at(10), at(10), at(5)), Duration::ZERO);
    }

    #[test]
    fn fresh_then_stale_then_maxstale() {
        let cache = HttpCache::new(1 << 20);
        let h = headers(&[("cache-control", "max-age=60"), ("etag", "\"v1\"")]);
        store(&cache, "http://a/doc", &h, b"doc", 0);
        assert!(is_hit(&lookup(
            &cache,
            "http://a/doc",
            Wants::default(),
            59
        )));
        let Lookup::Revalidate(v) = lookup(&cache, "http://a/doc", Wants::default(), 60) else {
            panic!("expected a revalidation")
        };
        assert_eq!(v.etag, Some(HeaderValue::from_static("\"v1\"")));
        let stale_ok = Wants {
            max_stale: Some(Duration::from_secs(30)),
            ..Wants::default()
        };
        assert!(is_hit(&lookup(&cache, "http://a/doc", stale_ok, 90)));
        assert!(!is_hit(&lookup(&cache, "http://a/doc", stale_ok, 91)));
        // maxage: younger than asked is a hit, older revalidates, zero always revalidates.
        let young = |secs| Wants {
            max_age: Some(Duration::from_secs(secs)),
            ..Wants::default()
        };
        assert!(is_hit(&lookup(&cache, "http://a/doc", young(10), 10)));
        assert!(!is_hit(&lookup(&cache, "http://a/doc", young(10), 11)));
        assert!(!is_hit(&lookup(&cache, "http://a/doc", young(0), 0)));
    }

    #[test]
    fn must_revalidate_and_no_cache_refuse_stale_and_unchecked_use() {
        let cache = HttpCache::new(1 << 20);
        let stale_ok = Wants {
            max_stale: Some(Duration::from_secs(3600)),
            ..Wants::default()
        };
        let h = headers(&[
            ("cache-control", "max-age=60, must-revalidate"),
            ("etag", "\"m\""),
        ]);
        store(&cache, "http://a/m", &h, b"m", 0);
        assert!(is_hit(&lookup(&cache, "http://a/m", stale_ok, 30)));
        assert!(matches!(
            lookup(&cache, "http://a/m", stale_ok, 61),
            Lookup::Revalidate(_)
        ));
        let h = headers(&[("cache-control", "no-cache, max-age=60"), ("etag", "\"n\"")]);
        store(&cache, "http://a/n", &h, b"n", 0);
        assert!(matches!(
            lookup(&cache, "http://a/n", stale_ok, 0),
            Lookup::Revalidate(_)
        ));
    }

    type Pairs = &'static [(&'static str, &'static str)];

    #[test]
    fn what_is_not_stored() {
        let cache = HttpCache::new(1 << 20);
        let with_cookie = headers(&[("cookie", "id=1")]);
        let cases: [(&str, Pairs, &HeaderMap); 5] = [
            (
                "no-store",
                &[("cache-control", "no-store, max-age=60")],
                &HeaderMap::new(),
            ),
            (
                "set-cookie",
                &[("cache-control", "max-age=60"), ("set-cookie", "a=b")],
                &HeaderMap::new(),
            ),
            (
                "vary-star",
                &[("cache-control", "max-age=60"), ("vary", "*")],
                &HeaderMap::new(),
            ),
            (
                "no-expiry-no-validator",
                &[("content-language", "en")],
                &HeaderMap::new(),
            ),
            (
                "private-with-cookie",
                &[("cache-control", "private, max-age=60")],
                &with_cookie,
            ),
        ];
        for (name, pairs, request) in cases {
            let key = format!("http://a/{name}");
            cache.store(
                &key,
                request,
                &Response {
                    status: 200,
                    headers: &headers(pairs),
                    content_type: None,
                    body: b"x",
                    request_time: at(0),
                    response_time: at(0),
                },
            );
            assert!(
                matches!(
                    cache.lookup(&key, request, Wants::default(), at(0)),
                    Lookup::Miss
                ),
                "{name} was stored"
            );
        }
        assert_eq!(cache.bytes(), 0);
        // A private response to a cookie-less request is the URL's alone: stored.
        store(
            &cache,
            "http://a/private",
            &headers(&[("cache-control", "private, max-age=60")]),
            b"p",
            0,
        );
        assert!(is_hit(&lookup(
            &cache,
            "http://a/private",
            Wants::default(),
            1
        )));
    }

    #[test]
    fn vary_cookie_selects_by_the_cookie_sent() {
        let cache = HttpCache::new(1 << 20);
        let alice = headers(&[("cookie", "id=alice")]);
        let bob = headers(&[("cookie", "id=bob")]);
        let h = headers(&[("cache-control", "max-age=60"), ("vary", "Accept, Cookie")]);
        cache.store(
            "http://a/v",
            &alice,
            &Response {
                status: 200,
                headers: &h,
                content_type: None,
                body: b"alice",
                request_time: at(0),
                response_time: at(0),
            },
        );
        let hit = cache.lookup("http://a/v", &alice, Wants::default(), at(1));
        assert!(is_hit(&hit));
        let other = cache.lookup("http://a/v", &bob, Wants::default(), at(1));
        assert!(matches!(other, Lookup::Miss));
    }

    #[test]
    fn refresh_updates_freshness_and_no_store_drops() {
        let cache = HttpCache::new(1 << 20);
        let h = headers(&[("cache-control", "max-age=10"), ("etag", "\"1\"")]);
        store(&cache, "http://a/r", &h, b"body", 0);
        let not_modified = headers(&[("cache-control", "max-age=100")]);
        let stored = cache
            .refresh("http://a/r", &not_modified, at(50), at(50))
            .unwrap();
        assert_eq!(&*stored.body, b"body");
        assert!(is_hit(&lookup(&cache, "http://a/r", Wants::default(), 149)));
        // The validator survives a 304 that does not repeat it.
        let Lookup::Revalidate(v) = lookup(&cache, "http://a/r", Wants::default(), 150) else {
            panic!("expected a revalidation")
        };
        assert_eq!(v.etag, Some(HeaderValue::from_static("\"1\"")));
        let no_store = headers(&[("cache-control", "no-store")]);
        assert!(
            cache
                .refresh("http://a/r", &no_store, at(160), at(160))
                .is_some()
        );
        assert!(matches!(
            lookup(&cache, "http://a/r", Wants::default(), 160),
            Lookup::Miss
        ));
        assert!(
            cache
                .refresh("http://a/gone", &no_store, at(0), at(0))
                .is_none()
        );
    }

    #[test]
    fn least_recently_used_goes_first_and_the_budget_holds() {
        let h = headers(&[("cache-control", "max-age=60")]);
        let body = vec![0u8; 1000];
        let one = {
            let probe = HttpCache::new(1 << 20);
            store(&probe, "http://a/1", &h, &body, 0);
            probe.bytes()
        };
        let cache = HttpCache::new(3 * one);
        store(&cache, "http://a/1", &h, &body, 0);
        store(&cache, "http://a/2", &h, &body, 0);
        store(&cache, "http://a/3", &h, &body, 0);
        assert!(is_hit(&lookup(&cache, "http://a/1", Wants::default(), 1)));
        store(&cache, "http://a/4", &h, &body, 0);
        assert!(cache.bytes() <= 3 * one);
        assert!(is_hit(&lookup(&cache, "http://a/1", Wants::default(), 1)));
        assert!(matches!(
            lookup(&cache, "http://a/2", Wants::default(), 1),
            Lookup::Miss
        ));
        assert!(is_hit(&lookup(&cache, "http://a/3", Wants::default(), 1)));
        assert!(is_hit(&lookup(&cache, "http://a/4", Wants::default(), 1)));
        // Bigger than the whole budget: not kept, and nothing else is evicted for it.
        store(&cache, "http://a/big", &h, &vec![0u8; 4 * one], 0);
        assert!(matches!(
            lookup(&cache, "http://a/big", Wants::default(), 1),
            Lookup::Miss
        ));
        assert!(is_hit(&lookup(&cache, "http://a/4", Wants::default(), 1)));
        // Replacing an entry does not count it twice.
        store(&cache, "http://a/4", &h, &body, 0);
        assert_eq!(cache.bytes(), 3 * one);
    }
}
