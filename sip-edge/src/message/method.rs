//! Typed request methods and status codes.

use std::fmt;
use std::hash::{Hash, Hasher};

use super::names::is_token;

/// A request method. Methods are case-sensitive (RFC 3261 §7.1): `invite` is an extension
/// method, not INVITE, and so is `RE%47IST%45R` (RFC 4475 §3.1.1.5).
///
/// [`Method::parse`] maps the standard names to their variants; equality and hashing go by the
/// method name, so a hand-built `Other("INVITE")` still equals [`Method::Invite`].
#[derive(Debug, Clone, Eq)]
pub enum Method {
    /// INVITE (RFC 3261).
    Invite,
    /// ACK (RFC 3261).
    Ack,
    /// BYE (RFC 3261).
    Bye,
    /// CANCEL (RFC 3261).
    Cancel,
    /// OPTIONS (RFC 3261).
    Options,
    /// REGISTER (RFC 3261).
    Register,
    /// PRACK (RFC 3262).
    Prack,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// NOTIFY (RFC 6665).
    Notify,
    /// PUBLISH (RFC 3903).
    Publish,
    /// INFO (RFC 6086).
    Info,
    /// REFER (RFC 3515).
    Refer,
    /// MESSAGE (RFC 3428).
    Message,
    /// UPDATE (RFC 3311).
    Update,
    /// Any other token, exactly as received.
    Other(String),
}

const KNOWN: &[(Method, &str)] = &[
    (Method::Invite, "INVITE"),
    (Method::Ack, "ACK"),
    (Method::Bye, "BYE"),
    (Method::Cancel, "CANCEL"),
    (Method::Options, "OPTIONS"),
    (Method::Register, "REGISTER"),
    (Method::Prack, "PRACK"),
    (Method::Subscribe, "SUBSCRIBE"),
    (Method::Notify, "NOTIFY"),
    (Method::Publish, "PUBLISH"),
    (Method::Info, "INFO"),
    (Method::Refer, "REFER"),
    (Method::Message, "MESSAGE"),
    (Method::Update, "UPDATE"),
];

impl Method {
    /// The method for `s` (case-sensitive); unknown names become [`Method::Other`].
    /// Whether `s` is a valid token is not checked here: see [`Method::is_valid`].
    pub fn parse(s: &str) -> Method {
        KNOWN
            .iter()
            .find(|(_, name)| *name == s)
            .map_or_else(|| Method::Other(s.to_owned()), |(m, _)| m.clone())
    }

    /// The method name.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Info => "INFO",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Update => "UPDATE",
            Method::Other(s) => s,
        }
    }

    /// True when the name is an RFC 3261 token (what a Request-Line or CSeq may carry).
    pub fn is_valid(&self) -> bool {
        is_token(self.as_str().as_bytes())
    }

    /// INVITE, the one method with its own transaction machines (RFC 3261 §17).
    pub fn is_invite(&self) -> bool {
        *self == Method::Invite
    }

    /// True for methods that may create a dialog (INVITE, SUBSCRIBE, REFER).
    pub fn creates_dialog(&self) -> bool {
        matches!(self, Method::Invite | Method::Subscribe | Method::Refer)
    }
}

impl PartialEq for Method {
    fn eq(&self, other: &Method) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Hash for Method {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for Method {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Method {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl From<&str> for Method {
    fn from(s: &str) -> Method {
        Method::parse(s)
    }
}

impl std::str::FromStr for Method {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Method, Self::Err> {
        Ok(Method::parse(s))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A SIP status code, 100..=699 (RFC 3261 §7.2, §21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusCode(u16);

impl StatusCode {
    /// 100 Trying.
    pub const TRYING: StatusCode = StatusCode(100);
    /// 180 Ringing.
    pub const RINGING: StatusCode = StatusCode(180);
    /// 183 Session Progress.
    pub const SESSION_PROGRESS: StatusCode = StatusCode(183);
    /// 200 OK.
    pub const OK: StatusCode = StatusCode(200);
    /// 400 Bad Request.
    pub const BAD_REQUEST: StatusCode = StatusCode(400);
    /// 401 Unauthorized.
    pub const UNAUTHORIZED: StatusCode = StatusCode(401);
    /// 403 Forbidden.
    pub const FORBIDDEN: StatusCode = StatusCode(403);
    /// 404 Not Found.
    pub const NOT_FOUND: StatusCode = StatusCode(404);
    /// 405 Method Not Allowed.
    pub const METHOD_NOT_ALLOWED: StatusCode = StatusCode(405);
    /// 407 Proxy Authentication Required.
    pub const PROXY_AUTHENTICATION_REQUIRED: StatusCode = StatusCode(407);
    /// 408 Request Timeout.
    pub const REQUEST_TIMEOUT: StatusCode = StatusCode(408);
    /// 415 Unsupported Media Type.
    pub const UNSUPPORTED_MEDIA_TYPE: StatusCode = StatusCode(415);
    /// 416 Unsupported URI Scheme.
    pub const UNSUPPORTED_URI_SCHEME: StatusCode = StatusCode(416);
    /// 420 Bad Extension.
    pub const BAD_EXTENSION: StatusCode = StatusCode(420);
    /// 480 Temporarily Unavailable.
    pub const TEMPORARILY_UNAVAILABLE: StatusCode = StatusCode(480);
    /// 481 Call/Transaction Does Not Exist.
    pub const CALL_DOES_NOT_EXIST: StatusCode = StatusCode(481);
    /// 483 Too Many Hops.
    pub const TOO_MANY_HOPS: StatusCode = StatusCode(483);
    /// 486 Busy Here.
    pub const BUSY_HERE: StatusCode = StatusCode(486);
    /// 487 Request Terminated.
    pub const REQUEST_TERMINATED: StatusCode = StatusCode(487);
    /// 488 Not Acceptable Here.
    pub const NOT_ACCEPTABLE_HERE: StatusCode = StatusCode(488);
    /// 500 Server Internal Error.
    pub const SERVER_INTERNAL_ERROR: StatusCode = StatusCode(500);
    /// 501 Not Implemented.
    pub const NOT_IMPLEMENTED: StatusCode = StatusCode(501);
    /// 502 Bad Gateway.
    pub const BAD_GATEWAY: StatusCode = StatusCode(502);
    /// 503 Service Unavailable.
    pub const SERVICE_UNAVAILABLE: StatusCode = StatusCode(503);
    /// 505 Version Not Supported.
    pub const VERSION_NOT_SUPPORTED: StatusCode = StatusCode(505);
    /// 603 Decline.
    pub const DECLINE: StatusCode = StatusCode(603);

    /// `Some` for 100..=699.
    pub const fn new(code: u16) -> Option<StatusCode> {
        if code >= 100 && code <= 699 {
            Some(StatusCode(code))
        } else {
            None
        }
    }

    /// The number.
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// 1 for 1xx ... 6 for 6xx.
    pub const fn class(self) -> u8 {
        (self.0 / 100) as u8
    }

    /// 1xx.
    pub const fn is_provisional(self) -> bool {
        self.class() == 1
    }

    /// 2xx..6xx.
    pub const fn is_final(self) -> bool {
        self.class() >= 2
    }

    /// 2xx.
    pub const fn is_success(self) -> bool {
        self.class() == 2
    }

    /// 3xx.
    pub const fn is_redirection(self) -> bool {
        self.class() == 3
    }

    /// 4xx.
    pub const fn is_client_error(self) -> bool {
        self.class() == 4
    }

    /// 5xx.
    pub const fn is_server_error(self) -> bool {
        self.class() == 5
    }

    /// 6xx.
    pub const fn is_global_failure(self) -> bool {
        self.class() == 6
    }

    /// 3xx..6xx: final and not a success (the INVITE client transaction ACKs these itself).
    pub const fn is_failure(self) -> bool {
        self.class() >= 3
    }

    /// The reason phrase RFC 3261 §21 (and later RFCs) give this code; for unknown codes the
    /// phrase of its class (`x00`), as a receiver treats an unknown code (§8.1.3.2).
    pub fn canonical_reason(self) -> &'static str {
        reason(self.0)
            .or_else(|| reason(u16::from(self.class()) * 100))
            .unwrap_or("Unknown")
    }
}

fn reason(code: u16) -> Option<&'static str> {
    Some(match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Conditional Request Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        417 => "Unknown Resource-Priority",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        428 => "Use Identity Header",
        429 => "Provide Referrer Identity",
        430 => "Flow Failed",
        433 => "Anonymity Disallowed",
        436 => "Bad Identity-Info",
        437 => "Unsupported Certificate",
        438 => "Invalid Identity Header",
        439 => "First Hop Lacks Outbound Support",
        440 => "Max-Breadth Exceeded",
        469 => "Bad Info Package",
        470 => "Consent Needed",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        494 => "Security Agreement Required",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        555 => "Push Notification Service Not Supported",
        580 => "Precondition Failure",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        607 => "Unwanted",
        608 => "Rejected",
        _ => return None,
    })
}

impl TryFrom<u16> for StatusCode {
    type Error = u16;
    fn try_from(code: u16) -> Result<StatusCode, u16> {
        StatusCode::new(code).ok_or(code)
    }
}

impl From<StatusCode> for u16 {
    fn from(s: StatusCode) -> u16 {
        s.0
    }
}

impl PartialEq<u16> for StatusCode {
    fn eq(&self, other: &u16) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn methods_are_case_sensitive() {
        assert_eq!(Method::parse("INVITE"), Method::Invite);
        assert_eq!(Method::parse("invite"), Method::Other("invite".into()));
        assert_ne!(Method::parse("invite"), Method::Invite);
        assert_eq!(Method::parse("RE%47IST%45R").as_str(), "RE%47IST%45R");
        assert_ne!(Method::parse("RE%47IST%45R"), Method::Register);
        assert!(Method::parse("NEWMETHOD").is_valid());
        assert!(!Method::parse("IN VITE").is_valid());
        assert!(!Method::parse("").is_valid());
    }

    #[test]
    fn every_known_method_round_trips() {
        for (m, name) in KNOWN {
            assert_eq!(Method::parse(name), *m);
            assert_eq!(m.as_str(), *name);
            assert_eq!(m.to_string(), *name);
            assert!(!matches!(Method::parse(name), Method::Other(_)));
        }
    }

    #[test]
    fn hand_built_other_equals_the_variant() {
        let other = Method::Other("BYE".into());
        assert_eq!(other, Method::Bye);
        let set: HashSet<Method> = [Method::Bye].into_iter().collect();
        assert!(set.contains(&other));
        assert_eq!(Method::Ack, "ACK");
        assert!(Method::Invite.is_invite() && !Method::Ack.is_invite());
        assert!(Method::Subscribe.creates_dialog() && !Method::Bye.creates_dialog());
    }

    #[test]
    fn status_classes() {
        assert_eq!(StatusCode::new(99), None);
        assert_eq!(StatusCode::new(700), None);
        let c = |n| StatusCode::new(n).unwrap();
        assert!(c(100).is_provisional() && !c(100).is_final());
        assert!(c(199).is_provisional());
        assert!(c(200).is_success() && c(200).is_final() && !c(200).is_failure());
        assert!(c(302).is_redirection() && c(302).is_failure());
        assert!(c(486).is_client_error());
        assert!(c(503).is_server_error());
        assert!(c(699).is_global_failure());
        assert_eq!(c(486).class(), 4);
        assert_eq!(u16::from(c(486)), 486);
        assert_eq!(StatusCode::try_from(1000), Err(1000));
        assert_eq!(StatusCode::OK, 200);
        assert!(StatusCode::TRYING < StatusCode::OK);
    }

    #[test]
    fn reason_phrases() {
        assert_eq!(StatusCode::OK.canonical_reason(), "OK");
        assert_eq!(
            StatusCode::TOO_MANY_HOPS.canonical_reason(),
            "Too Many Hops"
        );
        assert_eq!(
            StatusCode::CALL_DOES_NOT_EXIST.canonical_reason(),
            "Call/Transaction Does Not Exist"
        );
        // Unknown codes read as their class's x00 (RFC 3261 §8.1.3.2).
        assert_eq!(
            StatusCode::new(499).unwrap().canonical_reason(),
            "Bad Request"
        );
        assert_eq!(StatusCode::new(299).unwrap().canonical_reason(), "OK");
        assert_eq!(
            StatusCode::new(199).unwrap().canonical_reason(),
            "Early Dialog Terminated"
        );
        assert_eq!(StatusCode::new(198).unwrap().canonical_reason(), "Trying");
        for code in 100..=699 {
            assert!(!StatusCode::new(code).unwrap().canonical_reason().is_empty());
        }
    }
}
