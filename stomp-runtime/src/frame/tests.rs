//! Codec tests: every frame, escaping, truncation, limits, round trips.
//!
//! Byte vectors follow STOMP 1.2 ("Augmented BNF", "Value Encoding", "Repeated Header
//! Entries", "Size Limits", "Heart-beating"); 1.1 lacks the `\r` escape and 1.0 has none.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::{Command, EscapeError, Frame, FrameError, Parsed, Parser, Version, encode_into};
use crate::config::Limits;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Every command, in declaration order.
const COMMANDS: [Command; 15] = [
    Command::Connect,
    Command::Stomp,
    Command::Connected,
    Command::Send,
    Command::Subscribe,
    Command::Unsubscribe,
    Command::Ack,
    Command::Nack,
    Command::Begin,
    Command::Commit,
    Command::Abort,
    Command::Disconnect,
    Command::Message,
    Command::Receipt,
    Command::Error,
];

/// Exhaustive on purpose: a new command fails to compile here until [`COMMANDS`] has it.
fn command_index(c: Command) -> usize {
    match c {
        Command::Connect => 0,
        Command::Stomp => 1,
        Command::Connected => 2,
        Command::Send => 3,
        Command::Subscribe => 4,
        Command::Unsubscribe => 5,
        Command::Ack => 6,
        Command::Nack => 7,
        Command::Begin => 8,
        Command::Commit => 9,
        Command::Abort => 10,
        Command::Disconnect => 11,
        Command::Message => 12,
        Command::Receipt => 13,
        Command::Error => 14,
    }
}

/// The frames whose headers are never escaped (STOMP 1.2, "Value Encoding").
const UNESCAPED: [Command; 3] = [Command::Connect, Command::Stomp, Command::Connected];

fn limits(frame: usize, headers: usize, line: usize) -> Limits {
    Limits {
        max_frame_size: frame,
        max_headers: headers,
        max_header_line: line,
        max_head_size: usize::MAX,
        ..Limits::default()
    }
}

/// Small enough that generated input reaches every limit.
fn small_limits() -> Limits {
    limits(96, 4, 24)
}

/// A parser fed piece by piece, the way a transport feeds it; stops at the first error.
struct Feed {
    parser: Parser,
    buf: BytesMut,
    items: Vec<Parsed>,
    error: Option<FrameError>,
}

impl Feed {
    fn new(version: Version, limits: &Limits) -> Self {
        let mut parser = Parser::new(limits);
        parser.set_version(version);
        Self {
            parser,
            buf: BytesMut::new(),
            items: Vec::new(),
            error: None,
        }
    }

    /// Appends `bytes` and parses all it can; returns how many items came out.
    fn push(&mut self, bytes: &[u8]) -> usize {
        let before = self.items.len();
        if self.error.is_some() {
            return 0;
        }
        self.buf.extend_from_slice(bytes);
        loop {
            match self.parser.parse(&mut self.buf) {
                Ok(Some(item)) => self.items.push(item),
                Ok(None) => break,
                Err(e) => {
                    self.error = Some(e);
                    break;
                }
            }
        }
        self.items.len() - before
    }

    /// Whether the last push produced an error.
    fn failed(&self) -> bool {
        self.error.is_some()
    }
}

/// Feeds `pieces` in order with `limits`.
fn feed_pieces<'a>(
    version: Version,
    limits: &Limits,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Feed {
    let mut feed = Feed::new(version, limits);
    for piece in pieces {
        feed.push(piece);
    }
    feed
}

/// Parses `wire` in one piece with default limits: every item, or the first error.
fn parse_all(version: Version, wire: &[u8]) -> Result<Vec<Parsed>, FrameError> {
    let feed = feed_pieces(version, &Limits::default(), [wire]);
    match feed.error {
        Some(e) => Err(e),
        None => Ok(feed.items),
    }
}

/// Parses `wire`, which must hold exactly one whole frame and nothing else.
fn parse_one(version: Version, wire: &[u8]) -> Result<Frame, FrameError> {
    let feed = feed_pieces(version, &Limits::default(), [wire]);
    if let Some(e) = feed.error {
        return Err(e);
    }
    assert!(
        feed.buf.is_empty(),
        "{} bytes left over from {:?}",
        feed.buf.len(),
        Bytes::copy_from_slice(wire)
    );
    match <[Parsed; 1]>::try_from(feed.items) {
        Ok([Parsed::Frame(frame)]) => Ok(frame),
        other => panic!("expected one frame from {wire:?}, got {other:?}"),
    }
}

fn headers_of(frame: &Frame) -> Vec<(&str, &str)> {
    frame.headers.iter().collect()
}

/// What the parser returns for an encoded `frame`: the encoder adds `content-length` to a
/// non-empty body that lacks one.
fn expected_after_round_trip(frame: &Frame) -> Frame {
    let mut expected = frame.clone();
    if !frame.body.is_empty() && !frame.headers.contains("content-length") {
        expected
            .headers
            .push("content-length", frame.body.len().to_string());
    }
    expected
}

fn is_limit_error(e: &FrameError) -> bool {
    matches!(
        e,
        FrameError::FrameTooLarge { .. }
            | FrameError::HeadTooLarge { .. }
            | FrameError::HeaderLineTooLong { .. }
            | FrameError::TooManyHeaders { .. }
    )
}

// ---------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------

#[test]
fn command_list_covers_every_variant() {
    for (i, c) in COMMANDS.into_iter().enumerate() {
        assert_eq!(command_index(c), i, "{c}");
    }
}

#[test]
fn every_command_name_round_trips() {
    for c in COMMANDS {
        assert_eq!(Command::from_bytes(c.as_str().as_bytes()), Some(c));
        assert_eq!(c.to_string(), c.as_str());
    }
}

#[test]
fn every_command_parses_from_the_wire() {
    for version in Version::ALL {
        for c in COMMANDS {
            let wire = format!("{c}\nreceipt:r-1\n\n\0");
            assert_eq!(
                parse_one(version, wire.as_bytes()).unwrap(),
                Frame::new(c).header("receipt", "r-1"),
                "{c} in {version}"
            );
            let bare = format!("{c}\n\n\0");
            assert_eq!(parse_one(version, bare.as_bytes()).unwrap(), Frame::new(c));
        }
    }
}

#[test]
fn every_command_encodes() {
    for version in Version::ALL {
        for c in COMMANDS {
            let frame = Frame::new(c).header("receipt", "r-1");
            assert_eq!(frame.encode(version), format!("{c}\nreceipt:r-1\n\n\0"));

            let with_body = Frame::new(c).header("k", "v").body("hi");
            let wire = with_body.encode(version);
            assert_eq!(wire, format!("{c}\nk:v\ncontent-length:2\n\nhi\0"));
            assert_eq!(
                parse_one(version, &wire).unwrap(),
                expected_after_round_trip(&with_body)
            );
        }
    }
}

#[test]
fn unknown_commands_are_rejected() {
    for line in [
        "FOO",
        "send",
        "Send",
        "SEND ",
        " SEND",
        "SEND\t",
        "CONNECTX",
        "HEARTBEAT",
        "\0",
    ] {
        let wire = format!("{line}\nk:v\n\n\0");
        assert_eq!(
            parse_one(Version::V1_2, wire.as_bytes()),
            Err(FrameError::UnknownCommand(line.to_owned())),
            "{line:?}"
        );
    }
    // The CR of a CRLF is not part of the command.
    assert_eq!(
        parse_one(Version::V1_2, b"FOO\r\n\r\n\0"),
        Err(FrameError::UnknownCommand("FOO".to_owned()))
    );
    // A long line is cut in the error, on a character boundary.
    let long = "é".repeat(100);
    let Err(FrameError::UnknownCommand(shown)) =
        parse_one(Version::V1_2, format!("{long}\n\n\0").as_bytes())
    else {
        panic!("expected UnknownCommand");
    };
    assert_eq!(shown, format!("{}...", "é".repeat(32)));
}

#[test]
fn only_connect_stomp_and_connected_skip_escaping() {
    for c in COMMANDS {
        assert_eq!(c.escapes_headers(), !UNESCAPED.contains(&c), "{c}");
    }
}

#[test]
fn only_send_message_and_error_carry_bodies() {
    for c in COMMANDS {
        let expected = matches!(c, Command::Send | Command::Message | Command::Error);
        assert_eq!(c.allows_body(), expected, "{c}");
    }
}

// ---------------------------------------------------------------------------------------
// Escaping
// ---------------------------------------------------------------------------------------

/// A header name and value holding every character that needs escaping in 1.2.
const SPECIAL_NAME: &str = "a:b\nc\\d\re";
const SPECIAL_VALUE: &str = ":\n\\\r";

#[test]
fn v12_unescapes_all_four_sequences_in_names_and_values() {
    let frame = parse_one(
        Version::V1_2,
        b"SEND\na\\cb\\nc\\\\d\\re:\\c\\n\\\\\\r\n\n\0",
    )
    .unwrap();
    assert_eq!(headers_of(&frame), [(SPECIAL_NAME, SPECIAL_VALUE)]);
}

#[test]
fn v11_unescapes_three_sequences_and_rejects_cr_escape() {
    let frame = parse_one(Version::V1_1, b"SEND\na\\cb\\nc\\\\d:\\c\\n\\\\\n\n\0").unwrap();
    assert_eq!(headers_of(&frame), [("a:b\nc\\d", ":\n\\")]);
    for wire in [&b"SEND\nk:a\\rb\n\n\0"[..], b"SEND\nk\\r:v\n\n\0"] {
        assert_eq!(
            parse_one(Version::V1_1, wire),
            Err(FrameError::Escape(EscapeError { found: 'r' }))
        );
    }
}

#[test]
fn v10_takes_backslashes_literally() {
    let frame = parse_one(Version::V1_0, b"SEND\nk\\n\\c:v\\c\\r\\t\\\\\\\n\n\0").unwrap();
    assert_eq!(headers_of(&frame), [("k\\n\\c", "v\\c\\r\\t\\\\\\")]);
}

#[test]
fn undefined_escapes_are_errors_in_names_and_values() {
    for version in [Version::V1_1, Version::V1_2] {
        for (seq, found) in [
            ("\\t", 't'),
            ("\\b", 'b'),
            ("\\0", '0'),
            ("\\ ", ' '),
            ("\\N", 'N'),
            ("\\C", 'C'),
            ("\\é", 'é'),
        ] {
            let expected = Err(FrameError::Escape(EscapeError { found }));
            let in_value = format!("SEND\nk:a{seq}b\n\n\0");
            let in_name = format!("SEND\nk{seq}:v\n\n\0");
            assert_eq!(parse_one(version, in_value.as_bytes()), expected, "{seq}");
            assert_eq!(parse_one(version, in_name.as_bytes()), expected, "{seq}");
        }
        // A backslash that ends the value or the name escapes nothing.
        for wire in [&b"SEND\nk:v\\\n\n\0"[..], b"SEND\nk\\:v\n\n\0"] {
            assert_eq!(
                parse_one(version, wire),
                Err(FrameError::Escape(EscapeError { found: '\0' }))
            );
        }
    }
}

#[test]
fn every_escaping_command_unescapes() {
    for version in [Version::V1_1, Version::V1_2] {
        for c in COMMANDS.into_iter().filter(|c| c.escapes_headers()) {
            let wire = format!("{c}\nk\\c1:a\\cb\\nc\\\\\n\n\0");
            let frame = parse_one(version, wire.as_bytes()).unwrap();
            assert_eq!(headers_of(&frame), [("k:1", "a:b\nc\\")], "{c} {version}");
        }
    }
}

#[test]
fn connect_stomp_and_connected_headers_are_never_unescaped() {
    for version in Version::ALL {
        for c in UNESCAPED {
            // Undefined escapes are not errors either: there is no escaping at all.
            let wire = format!("{c}\nlogin:a\\cb\\t\\\nhost:x:y\\n\n\n\0");
            let frame = parse_one(version, wire.as_bytes()).unwrap();
            assert_eq!(
                headers_of(&frame),
                [("login", "a\\cb\\t\\"), ("host", "x:y\\n")],
                "{c} {version}"
            );
        }
    }
}

#[test]
fn v12_encodes_all_four_escapes() {
    let frame = Frame::new(Command::Send).header(SPECIAL_NAME, SPECIAL_VALUE);
    let wire = frame.encode(Version::V1_2);
    assert_eq!(wire, &b"SEND\na\\cb\\nc\\\\d\\re:\\c\\n\\\\\\r\n\n\0"[..]);
    assert_eq!(parse_one(Version::V1_2, &wire).unwrap(), frame);
}

#[test]
fn v11_encodes_three_escapes_and_leaves_cr_raw() {
    let frame = Frame::new(Command::Send).header(SPECIAL_NAME, "x:\n\\\ry");
    let wire = frame.encode(Version::V1_1);
    assert_eq!(wire, &b"SEND\na\\cb\\nc\\\\d\re:x\\c\\n\\\\\ry\n\n\0"[..]);
    assert_eq!(parse_one(Version::V1_1, &wire).unwrap(), frame);
}

#[test]
fn v10_encodes_without_escaping() {
    // A CR, which a reader may take for the start of a CRLF, becomes a space.
    let frame = Frame::new(Command::Send).header("k\\", "a:b\\c\r");
    assert_eq!(frame.encode(Version::V1_0), &b"SEND\nk\\:a:b\\c \n\n\0"[..]);
    let frame = Frame::new(Command::Send).header("k", "a:b\\c");
    assert_eq!(
        parse_one(Version::V1_0, &frame.encode(Version::V1_0)).unwrap(),
        frame
    );
}

#[test]
fn unescaped_headers_cannot_smuggle_other_headers() {
    // A 1.1+ sender's escaped LF and colon reach a 1.0 subscriber, or a CONNECTED frame.
    for (command, version) in [
        (Command::Message, Version::V1_0),
        (Command::Connected, Version::V1_2),
    ] {
        let frame = Frame::new(command)
            .header("x", "a\ncontent-length:0\ndestination:/evil")
            .header("content-length:0\nx", "v")
            .header("destination:/evil", "v")
            .header("destination", "/queue/a")
            .body("hello");
        let wire = frame.encode(version);
        let parsed = parse_one(version, &wire).unwrap();
        assert_eq!(
            headers_of(&parsed),
            [
                ("x", "a content-length:0 destination:/evil"),
                ("destination", "/queue/a"),
                ("content-length", "5"),
            ],
            "{command} {version}"
        );
        assert_eq!(&parsed.body[..], b"hello");
    }
}

#[test]
fn nul_in_a_header_is_refused_by_the_parser() {
    for version in Version::ALL {
        for wire in [
            &b"SEND\ndestination:/a\nx:a\0b\n\nbody\0"[..],
            &b"SEND\ndestination:/a\nx\0y:v\n\n\0"[..],
            &b"MESSAGE\ndestination:/a\0\n\n\0"[..],
        ] {
            assert_eq!(
                parse_one(version, wire),
                Err(FrameError::NulInHeader),
                "{version} {wire:?}"
            );
        }
        // In the body, with content-length, NUL is data.
        let ok = parse_one(version, b"SEND\ncontent-length:3\n\na\0b\0").unwrap();
        assert_eq!(&ok.body[..], b"a\0b");
    }
}

#[test]
fn nul_never_reaches_the_wire_in_a_header() {
    for version in Version::ALL {
        for command in [Command::Message, Command::Connected] {
            let frame = Frame::new(command)
                .header("x", "a\0b")
                .header("bad\0name", "v")
                .header("destination", "/queue/a");
            let wire = frame.encode(version);
            let head_end = wire.len() - 1;
            assert!(
                !wire[..head_end].contains(&0),
                "{command} {version}: {wire:?}"
            );
            let parsed = parse_one(version, &wire).unwrap();
            assert_eq!(
                headers_of(&parsed),
                [("x", "a b"), ("destination", "/queue/a")],
                "{command} {version}"
            );
        }
    }
}

#[test]
fn connect_stomp_and_connected_headers_are_never_escaped() {
    for version in Version::ALL {
        for c in UNESCAPED {
            let frame = Frame::new(c)
                .header("passcode", "a\\b:c")
                .header("host", "h\\n");
            let wire = frame.encode(version);
            assert_eq!(wire, format!("{c}\npasscode:a\\b:c\nhost:h\\n\n\n\0"));
            assert_eq!(parse_one(version, &wire).unwrap(), frame);
        }
    }
}

#[test]
fn every_escaping_command_escapes_and_round_trips() {
    for version in [Version::V1_1, Version::V1_2] {
        for c in COMMANDS.into_iter().filter(|c| c.escapes_headers()) {
            let frame = Frame::new(c).header("a:b\nc\\", "x:y\nz\\");
            let wire = frame.encode(version);
            assert_eq!(wire, format!("{c}\na\\cb\\nc\\\\:x\\cy\\nz\\\\\n\n\0"));
            assert_eq!(parse_one(version, &wire).unwrap(), frame);
        }
    }
}

#[test]
fn raw_colons_in_values_are_accepted() {
    // Only the first colon separates; strict 1.2 peers escape the rest, lenient ones don't.
    for version in Version::ALL {
        let frame = parse_one(version, b"SEND\nk:a:b::\n\n\0").unwrap();
        assert_eq!(headers_of(&frame), [("k", "a:b::")], "{version}");
    }
}

#[test]
fn header_whitespace_and_empty_values_are_kept() {
    let frame = parse_one(Version::V1_2, b"SEND\n k : v \nempty:\n\n\0").unwrap();
    assert_eq!(headers_of(&frame), [(" k ", " v "), ("empty", "")]);
}

// ---------------------------------------------------------------------------------------
// Repeated headers
// ---------------------------------------------------------------------------------------

#[test]
fn repeated_headers_first_wins_and_all_are_kept_in_order() {
    let frame = parse_one(Version::V1_2, b"SEND\nk:1\nother:x\nk:2\nk:3\n\n\0").unwrap();
    assert_eq!(frame.get("k"), Some("1"));
    assert_eq!(
        headers_of(&frame),
        [("k", "1"), ("other", "x"), ("k", "2"), ("k", "3")]
    );
}

#[test]
fn repeated_headers_compare_after_unescaping() {
    let frame = parse_one(Version::V1_2, b"SEND\nk\\c:1\nk\\c:2\n\n\0").unwrap();
    assert_eq!(frame.get("k:"), Some("1"));
}

#[test]
fn repeated_content_length_first_wins() {
    let frame = parse_one(
        Version::V1_2,
        b"SEND\ncontent-length:3\ncontent-length:1\n\na\0b\0",
    )
    .unwrap();
    assert_eq!(&frame.body[..], b"a\0b");
    // A bad repeat is never looked at.
    let frame = parse_one(
        Version::V1_2,
        b"SEND\ncontent-length:1\ncontent-length:x\n\n\0\0",
    )
    .unwrap();
    assert_eq!(&frame.body[..], b"\0");
}

#[test]
fn repeated_headers_encode_in_order() {
    let frame = Frame::new(Command::Message)
        .header("k", "1")
        .header("k", "2");
    let wire = frame.encode(Version::V1_2);
    assert_eq!(wire, &b"MESSAGE\nk:1\nk:2\n\n\0"[..]);
    assert_eq!(parse_one(Version::V1_2, &wire).unwrap(), frame);
}

#[test]
fn headers_set_remove_and_collect() {
    let mut frame = Frame::new(Command::Send)
        .header("k", "1")
        .header("j", "x")
        .header("k", "2");
    assert!(frame.headers.contains("k"));
    assert_eq!(frame.headers.len(), 3);
    frame.headers.set("k", "3");
    assert_eq!(headers_of(&frame), [("j", "x"), ("k", "3")]);
    frame.headers.push("k", "4");
    assert_eq!(frame.headers.remove("k").as_deref(), Some("3"));
    assert_eq!(headers_of(&frame), [("j", "x")]);
    assert_eq!(frame.headers.remove("k"), None);
    let collected: super::Headers = [("a", "1"), ("a", "2")].into_iter().collect();
    assert_eq!(collected.get("a"), Some("1"));
    assert!(!collected.is_empty());
}

// ---------------------------------------------------------------------------------------
// Line endings and heart-beats
// ---------------------------------------------------------------------------------------

#[test]
fn crlf_line_endings_are_accepted() {
    for version in Version::ALL {
        let frame = parse_one(
            version,
            b"SEND\r\ndestination:/queue/a\r\ncontent-type:text/plain\r\n\r\nhi\0",
        )
        .unwrap();
        assert_eq!(
            frame,
            Frame::new(Command::Send)
                .header("destination", "/queue/a")
                .header("content-type", "text/plain")
                .body("hi")
        );
        let frame = parse_one(version, b"SEND\r\ncontent-length:3\r\n\r\na\0b\0").unwrap();
        assert_eq!(&frame.body[..], b"a\0b");
        // LF and CRLF mixed, and a CRLF blank line after LF headers.
        let frame = parse_one(version, b"SEND\nk:v\r\nj:w\n\r\n\0").unwrap();
        assert_eq!(headers_of(&frame), [("k", "v"), ("j", "w")]);
    }
    // Before version negotiation the parser speaks 1.0; a 1.2 client may send CRLF.
    let frame = parse_one(
        Version::V1_0,
        b"CONNECT\r\naccept-version:1.2\r\nhost:h\r\n\r\n\0",
    )
    .unwrap();
    assert_eq!(
        headers_of(&frame),
        [("accept-version", "1.2"), ("host", "h")]
    );
}

#[test]
fn a_cr_before_lf_always_ends_the_line() {
    // So 1.0 and 1.1 cannot carry a value that ends in CR; 1.2 escapes it as `\r`.
    for version in [Version::V1_0, Version::V1_1] {
        let frame = parse_one(version, b"SEND\nk:v\r\n\n\0").unwrap();
        assert_eq!(headers_of(&frame), [("k", "v")]);
        // Only one CR belongs to the line end; a CR inside a value stays.
        let frame = parse_one(version, b"SEND\nk:a\rb\r\r\n\n\0").unwrap();
        assert_eq!(headers_of(&frame), [("k", "a\rb\r")]);
    }
}

#[test]
fn heart_beats_are_single_eols() {
    assert_eq!(parse_all(Version::V1_2, b"\n"), Ok(vec![Parsed::HeartBeat]));
    assert_eq!(
        parse_all(Version::V1_2, b"\r\n"),
        Ok(vec![Parsed::HeartBeat])
    );
    assert_eq!(
        parse_all(Version::V1_2, b"\n\r\n\n\r\n"),
        Ok(vec![Parsed::HeartBeat; 4])
    );
    // A lone CR waits for its LF.
    let mut feed = Feed::new(Version::V1_2, &Limits::default());
    assert_eq!(feed.push(b"\r"), 0);
    assert_eq!(feed.push(b"\n"), 1);
    assert_eq!(feed.items, [Parsed::HeartBeat]);
    assert!(feed.buf.is_empty());
}

#[test]
fn a_stray_carriage_return_between_frames_is_an_error() {
    for wire in [&b"\rX"[..], b"\r\r\n", b"SEND\n\n\0\rSEND\n\n\0"] {
        let feed = feed_pieces(Version::V1_2, &Limits::default(), [wire]);
        assert_eq!(
            feed.error,
            Some(FrameError::StrayCarriageReturn),
            "{wire:?}"
        );
    }
}

#[test]
fn heart_beats_before_between_and_after_frames() {
    let wire = b"\n\r\n\nCONNECT\naccept-version:1.2\n\n\0\nSEND\n\na\0\r\n\r\nSEND\n\nb\0\n";
    let items = parse_all(Version::V1_2, wire).unwrap();
    assert_eq!(
        items,
        [
            Parsed::HeartBeat,
            Parsed::HeartBeat,
            Parsed::HeartBeat,
            Parsed::Frame(Frame::new(Command::Connect).header("accept-version", "1.2")),
            Parsed::HeartBeat,
            Parsed::Frame(Frame::new(Command::Send).body("a")),
            Parsed::HeartBeat,
            Parsed::HeartBeat,
            Parsed::Frame(Frame::new(Command::Send).body("b")),
            Parsed::HeartBeat,
        ]
    );
}

#[test]
fn several_frames_in_one_buffer_all_come_out() {
    let frames = [
        Frame::new(Command::Send)
            .header("destination", "/queue/a")
            .body(&b"\0\0"[..]),
        Frame::new(Command::Message).header(SPECIAL_NAME, SPECIAL_VALUE),
        Frame::new(Command::Ack).header("id", "1"),
        Frame::new(Command::Error)
            .header("message", "boom")
            .body("details"),
        Frame::new(Command::Receipt).header("receipt-id", "77"),
    ];
    let mut wire = BytesMut::new();
    for frame in &frames {
        encode_into(frame, Version::V1_2, &mut wire);
    }
    // Without content-length and back to back: the NUL alone ends each frame.
    wire.extend_from_slice(b"SEND\n\nx\0SEND\n\ny\0");
    let items = parse_all(Version::V1_2, &wire).unwrap();
    let mut expected: Vec<Parsed> = frames
        .iter()
        .map(|f| Parsed::Frame(expected_after_round_trip(f)))
        .collect();
    expected.push(Parsed::Frame(Frame::new(Command::Send).body("x")));
    expected.push(Parsed::Frame(Frame::new(Command::Send).body("y")));
    assert_eq!(items, expected);
}

#[test]
fn the_version_can_change_between_frames() {
    let mut parser = Parser::new(&Limits::default());
    assert_eq!(parser.version(), Version::V1_0);
    let mut buf = BytesMut::from(&b"SEND\nk:a\\cb\n\n\0SEND\nk:a\\cb\n\n\0"[..]);
    let Some(Parsed::Frame(first)) = parser.parse(&mut buf).unwrap() else {
        panic!("expected a frame");
    };
    assert_eq!(first.get("k"), Some("a\\cb"));
    parser.set_version(Version::V1_2);
    let Some(Parsed::Frame(second)) = parser.parse(&mut buf).unwrap() else {
        panic!("expected a frame");
    };
    assert_eq!(second.get("k"), Some("a:b"));
}

// ---------------------------------------------------------------------------------------
// Bodies and the encoder
// ---------------------------------------------------------------------------------------

#[test]
fn content_length_is_added_only_to_non_empty_bodies_that_lack_it() {
    let empty = Frame::new(Command::Send).header("destination", "/q");
    assert_eq!(
        empty.encode(Version::V1_2),
        &b"SEND\ndestination:/q\n\n\0"[..]
    );
    let body = Frame::new(Command::Send).body(&b"a\0b"[..]);
    assert_eq!(
        body.encode(Version::V1_2),
        &b"SEND\ncontent-length:3\n\na\0b\0"[..]
    );
    // An explicit content-length is kept and not repeated.
    let explicit = Frame::new(Command::Send)
        .header("content-length", "3")
        .body("abc");
    assert_eq!(
        explicit.encode(Version::V1_2),
        &b"SEND\ncontent-length:3\n\nabc\0"[..]
    );
}

#[test]
fn encode_into_appends() {
    let mut out = BytesMut::from(&b"\n"[..]);
    encode_into(&Frame::new(Command::Disconnect), Version::V1_2, &mut out);
    encode_into(&Frame::new(Command::Disconnect), Version::V1_2, &mut out);
    assert_eq!(&out[..], b"\nDISCONNECT\n\n\0DISCONNECT\n\n\0");
}

#[test]
fn bodies_are_binary_with_content_length_and_up_to_nul_without() {
    let frame = parse_one(Version::V1_2, b"SEND\ncontent-length:4\n\n\0\xff\n\0\0").unwrap();
    assert_eq!(&frame.body[..], b"\0\xff\n\0");
    let frame = parse_one(Version::V1_2, b"SEND\n\n\xff\xfe\r\n\0").unwrap();
    assert_eq!(&frame.body[..], b"\xff\xfe\r\n");
    let frame = parse_one(Version::V1_2, b"SEND\ncontent-length:0\n\n\0").unwrap();
    assert!(frame.body.is_empty());
}

#[test]
fn error_frames_carry_message_and_details() {
    let frame = Frame::error("bad destination", "no such queue");
    assert_eq!(
        headers_of(&frame),
        [
            ("message", "bad destination"),
            ("content-type", "text/plain")
        ]
    );
    assert_eq!(&frame.body[..], b"no such queue");
    assert_eq!(
        parse_one(Version::V1_2, &frame.encode(Version::V1_2)).unwrap(),
        expected_after_round_trip(&frame)
    );
    assert!(Frame::error("m", "").body.is_empty());
}

// ---------------------------------------------------------------------------------------
// Truncation
// ---------------------------------------------------------------------------------------

struct Sample {
    name: &'static str,
    version: Version,
    wire: Vec<u8>,
    frame: Frame,
}

fn encoded(name: &'static str, version: Version, frame: Frame) -> Sample {
    Sample {
        name,
        version,
        wire: frame.encode(version).to_vec(),
        frame: expected_after_round_trip(&frame),
    }
}

fn literal(name: &'static str, version: Version, wire: &[u8], frame: Frame) -> Sample {
    Sample {
        name,
        version,
        wire: wire.to_vec(),
        frame,
    }
}

fn samples() -> Vec<Sample> {
    vec![
        encoded(
            "content-length, NUL in body",
            Version::V1_2,
            Frame::new(Command::Send)
                .header("destination", "/queue/a")
                .body(&b"a\0b\0\0c"[..]),
        ),
        literal(
            "no content-length",
            Version::V1_2,
            b"SEND\ndestination:/queue/a\n\nhello\0",
            Frame::new(Command::Send)
                .header("destination", "/queue/a")
                .body("hello"),
        ),
        encoded(
            "1.2 escapes",
            Version::V1_2,
            Frame::new(Command::Message)
                .header(SPECIAL_NAME, SPECIAL_VALUE)
                .header("subscription", "0"),
        ),
        encoded(
            "1.1 escapes",
            Version::V1_1,
            Frame::new(Command::Message).header("a:b\nc\\", "x:\n\\\ry"),
        ),
        literal(
            "1.0 backslashes",
            Version::V1_0,
            b"SEND\nk\\c:v\\n\n\n\0",
            Frame::new(Command::Send).header("k\\c", "v\\n"),
        ),
        literal(
            "CRLF with content-length",
            Version::V1_2,
            b"MESSAGE\r\nsubscription:0\r\nmessage-id:7\r\ncontent-length:4\r\n\r\n\0\r\n\0\0",
            Frame::new(Command::Message)
                .header("subscription", "0")
                .header("message-id", "7")
                .header("content-length", "4")
                .body(&b"\0\r\n\0"[..]),
        ),
        literal(
            "CRLF without content-length",
            Version::V1_2,
            b"SEND\r\nk:v\r\n\r\nx\r\0",
            Frame::new(Command::Send).header("k", "v").body("x\r"),
        ),
        literal(
            "CONNECT unescaped",
            Version::V1_2,
            b"CONNECT\naccept-version:1.1,1.2\nhost:a:b\\c\n\n\0",
            Frame::new(Command::Connect)
                .header("accept-version", "1.1,1.2")
                .header("host", "a:b\\c"),
        ),
        literal(
            "no headers, no body",
            Version::V1_2,
            b"DISCONNECT\n\n\0",
            Frame::new(Command::Disconnect),
        ),
        literal(
            "content-length zero",
            Version::V1_2,
            b"SEND\ncontent-length:0\n\n\0",
            Frame::new(Command::Send).header("content-length", "0"),
        ),
        literal(
            "empty value",
            Version::V1_2,
            b"SEND\nk:\n\n\0",
            Frame::new(Command::Send).header("k", ""),
        ),
        encoded(
            "multi-byte UTF-8",
            Version::V1_2,
            Frame::new(Command::Error)
                .header("message", "é€🦀")
                .body("💥"),
        ),
    ]
}

#[test]
fn samples_parse_whole() {
    for s in samples() {
        assert_eq!(
            parse_one(s.version, &s.wire).unwrap(),
            s.frame,
            "{}",
            s.name
        );
    }
}

#[test]
fn truncated_at_every_byte_in_two_pieces() {
    for s in samples() {
        for split in 0..=s.wire.len() {
            let mut feed = Feed::new(s.version, &Limits::default());
            let first = feed.push(&s.wire[..split]);
            if split < s.wire.len() {
                assert_eq!(first, 0, "{} split at {split}", s.name);
            }
            feed.push(&s.wire[split..]);
            assert_eq!(feed.error, None, "{} split at {split}", s.name);
            assert_eq!(
                feed.items,
                [Parsed::Frame(s.frame.clone())],
                "{} split at {split}",
                s.name
            );
            assert!(feed.buf.is_empty(), "{} split at {split}", s.name);
        }
    }
}

#[test]
fn truncated_at_every_pair_of_bytes_in_three_pieces() {
    for s in samples() {
        let n = s.wire.len();
        for i in 0..=n {
            for j in i..=n {
                let feed = feed_pieces(
                    s.version,
                    &Limits::default(),
                    [&s.wire[..i], &s.wire[i..j], &s.wire[j..]],
                );
                assert_eq!(
                    feed.items,
                    [Parsed::Frame(s.frame.clone())],
                    "{} split at {i}, {j}",
                    s.name
                );
            }
        }
    }
}

#[test]
fn fed_byte_by_byte_the_frame_comes_out_at_the_last_byte_only() {
    for s in samples() {
        let mut feed = Feed::new(s.version, &Limits::default());
        let last = s.wire.len() - 1;
        for (i, b) in s.wire.iter().enumerate() {
            let out = feed.push(&[*b]);
            assert_eq!(out, usize::from(i == last), "{} at byte {i}", s.name);
            assert!(!feed.failed(), "{} at byte {i}: {:?}", s.name, feed.error);
        }
        assert_eq!(feed.items, [Parsed::Frame(s.frame)], "{}", s.name);
        assert!(feed.buf.is_empty());
    }
}

#[test]
fn a_stream_of_frames_and_heart_beats_split_anywhere() {
    let samples: Vec<Sample> = samples()
        .into_iter()
        .filter(|s| s.version == Version::V1_2)
        .collect();
    let mut wire = b"\r\n".to_vec();
    let mut expected = vec![Parsed::HeartBeat];
    for s in &samples {
        wire.extend_from_slice(&s.wire);
        wire.push(b'\n');
        expected.push(Parsed::Frame(s.frame.clone()));
        expected.push(Parsed::HeartBeat);
    }
    for split in 0..=wire.len() {
        let feed = feed_pieces(
            Version::V1_2,
            &Limits::default(),
            [&wire[..split], &wire[split..]],
        );
        assert_eq!(feed.error, None, "split at {split}");
        assert_eq!(feed.items, expected, "split at {split}");
    }
    let feed = feed_pieces(
        Version::V1_2,
        &Limits::default(),
        wire.iter().map(std::slice::from_ref),
    );
    assert_eq!(feed.items, expected);
}

// ---------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------

#[test]
fn announced_content_length_over_the_limit_fails_before_the_body() {
    let head = b"SEND\ncontent-length:95\n\n";
    let mut feed = Feed::new(Version::V1_2, &limits(100, 64, 1024));
    feed.push(head);
    assert_eq!(
        feed.error,
        Some(FrameError::FrameTooLarge {
            size: head.len() + 95,
            max: 100
        })
    );
}

#[test]
fn frame_size_limit_is_inclusive_with_content_length() {
    let head = |n: usize| format!("SEND\ncontent-length:{n}\n\n");
    // Head and body together at exactly the limit pass; one more byte fails.
    let n = 70;
    let max = head(n).len() + n;
    let mut wire = head(n).into_bytes();
    wire.extend(std::iter::repeat_n(b'x', n));
    wire.push(0);
    let feed = feed_pieces(Version::V1_2, &limits(max, 64, 1024), [&wire[..]]);
    assert_eq!(feed.error, None);
    assert_eq!(feed.items.len(), 1);

    let feed = feed_pieces(
        Version::V1_2,
        &limits(max, 64, 1024),
        [head(n + 1).as_bytes()],
    );
    assert_eq!(
        feed.error,
        Some(FrameError::FrameTooLarge { size: max + 1, max })
    );
}

#[test]
fn a_body_without_content_length_fails_as_soon_as_it_passes_the_limit() {
    let max = 64;
    let mut feed = Feed::new(Version::V1_2, &limits(max, 64, 1024));
    feed.push(b"SEND\n\n");
    let mut fed = 6;
    while !feed.failed() {
        feed.push(b"x");
        fed += 1;
        assert!(fed <= max + 1, "no error after {fed} bytes");
    }
    assert_eq!(fed, max + 1, "error before the limit was passed");
    assert_eq!(
        feed.error,
        Some(FrameError::FrameTooLarge { size: max + 1, max })
    );
    // Less than the buffered whole: the parser did not wait for a NUL.
    assert!(feed.buf.len() <= max + 1);
}

#[test]
fn a_body_without_content_length_may_end_exactly_at_the_limit() {
    let max = 64;
    let mut wire = b"SEND\n\n".to_vec();
    wire.resize(max, b'x');
    wire.push(0);
    let feed = feed_pieces(
        Version::V1_2,
        &limits(max, 64, 1024),
        wire.iter().map(std::slice::from_ref),
    );
    assert_eq!(feed.error, None);
    assert_eq!(feed.items.len(), 1);
    // One more body byte, even with the NUL in the same piece, is too many.
    wire.insert(max, b'x');
    let feed = feed_pieces(Version::V1_2, &limits(max, 64, 1024), [&wire[..]]);
    assert_eq!(
        feed.error,
        Some(FrameError::FrameTooLarge { size: max + 1, max })
    );
}

#[test]
fn an_unfinished_head_fails_as_soon_as_it_passes_the_frame_limit() {
    let max = 64;
    let mut feed = Feed::new(Version::V1_2, &limits(max, 1000, 1000));
    let mut fed = 0;
    for b in b"SEND\n".iter().chain(b"k:v\n".iter().cycle()) {
        feed.push(&[*b]);
        fed += 1;
        if feed.failed() {
            break;
        }
        assert!(fed <= max, "no error after {fed} bytes");
    }
    assert_eq!(
        feed.error,
        Some(FrameError::FrameTooLarge { size: max + 1, max })
    );
}

#[test]
fn header_count_limit() {
    let l = limits(4096, 3, 1024);
    let ok = feed_pieces(Version::V1_2, &l, [&b"SEND\na:1\nb:2\nc:3\n\n\0"[..]]);
    assert_eq!(ok.error, None);
    assert_eq!(ok.items.len(), 1);
    // Repeats count, and the error comes before the blank line.
    let over = feed_pieces(Version::V1_2, &l, [&b"SEND\na:1\na:2\na:3\na:4\n"[..]]);
    assert_eq!(
        over.error,
        Some(FrameError::TooManyHeaders { count: 4, max: 3 })
    );
    // Frames that are never escaped are counted too.
    let connect = feed_pieces(
        Version::V1_0,
        &l,
        [&b"CONNECT\na:1\nb:2\nc:3\nd:4\n\n\0"[..]],
    );
    assert_eq!(
        connect.error,
        Some(FrameError::TooManyHeaders { count: 4, max: 3 })
    );
    let none = limits(4096, 0, 1024);
    assert_eq!(
        feed_pieces(Version::V1_2, &none, [&b"SEND\n\n\0"[..]])
            .items
            .len(),
        1
    );
    assert_eq!(
        feed_pieces(Version::V1_2, &none, [&b"SEND\na:1\n"[..]]).error,
        Some(FrameError::TooManyHeaders { count: 1, max: 0 })
    );
}

#[test]
fn header_line_limit() {
    let max = 16;
    let l = limits(4096, 64, max);
    let line = format!("k:{}", "v".repeat(max - 2));
    assert_eq!(line.len(), max);
    for eol in ["\n", "\r\n"] {
        let wire = format!("SEND{eol}{line}{eol}{eol}\0");
        let feed = feed_pieces(Version::V1_2, &l, [wire.as_bytes()]);
        assert_eq!(feed.error, None, "{eol:?}");
        assert_eq!(feed.items.len(), 1);

        let wire = format!("SEND{eol}{line}v{eol}{eol}\0");
        let feed = feed_pieces(Version::V1_2, &l, [wire.as_bytes()]);
        assert_eq!(
            feed.error,
            Some(FrameError::HeaderLineTooLong { size: max + 1, max }),
            "{eol:?}"
        );
    }
}

#[test]
fn a_header_line_that_never_ends_fails_near_the_line_limit() {
    let max = 16;
    for prefix in [&b"SEND\n"[..], b""] {
        // `b""`: the command line itself never ends.
        let mut feed = Feed::new(Version::V1_2, &limits(1 << 20, 64, max));
        feed.push(prefix);
        let mut pending = 0;
        while !feed.failed() {
            feed.push(b"k");
            pending += 1;
            assert!(pending <= max + 2, "no error after {pending} bytes");
        }
        // One byte of slack for a CR that may come before the LF.
        assert!(pending > max, "error after {pending} bytes");
        assert!(matches!(
            feed.error,
            Some(FrameError::HeaderLineTooLong { max: 16, .. })
        ));
    }
}

#[test]
fn invalid_content_length_is_rejected() {
    for value in [
        "abc",
        "-1",
        "",
        "1.5",
        "0x10",
        "1 2",
        "99999999999999999999999999",
    ] {
        let wire = format!("SEND\ncontent-length:{value}\n\n\0");
        assert_eq!(
            parse_one(Version::V1_2, wire.as_bytes()),
            Err(FrameError::InvalidContentLength(value.to_owned())),
            "{value:?}"
        );
    }
}

#[test]
fn a_missing_nul_after_content_length_is_rejected_at_that_byte() {
    let mut feed = Feed::new(Version::V1_2, &Limits::default());
    feed.push(b"SEND\ncontent-length:2\n\nab");
    assert!(!feed.failed());
    feed.push(b"c");
    assert_eq!(feed.error, Some(FrameError::MissingNul));
    assert_eq!(
        parse_one(Version::V1_2, b"SEND\ncontent-length:0\n\nx\0"),
        Err(FrameError::MissingNul)
    );
}

#[test]
fn invalid_utf8_in_the_head_is_rejected() {
    for wire in [
        &b"SEND\nk:\xff\n\n\0"[..],
        b"SEND\n\xc3:v\n\n\0",
        b"SE\xffND\n\n\0",
        b"SEND\nk:\xe2\x82\n\n\0",
        b"CONNECT\nlogin:\xc0\x80\n\n\0",
    ] {
        assert_eq!(
            parse_one(Version::V1_2, wire),
            Err(FrameError::InvalidUtf8),
            "{wire:?}"
        );
    }
}

#[test]
fn malformed_header_lines_are_rejected() {
    for (version, wire, line) in [
        (Version::V1_2, &b"SEND\nnocolon\n\n\0"[..], "nocolon"),
        (Version::V1_2, b"SEND\r\nnocolon\r\n\r\n\0", "nocolon"),
        (Version::V1_2, b"SEND\n:v\n\n\0", ":v"),
        (Version::V1_2, b"SEND\n:\n\n\0", ":"),
        (Version::V1_0, b"CONNECT\n:v\n\n\0", ":v"),
        // An escaped colon does not separate name and value.
        (Version::V1_2, b"SEND\nk\\cv\n\n\0", "k\\cv"),
    ] {
        assert_eq!(
            parse_one(version, wire),
            Err(FrameError::MalformedHeader(line.to_owned())),
            "{wire:?}"
        );
    }
}

#[test]
fn unlimited_limits_do_not_overflow() {
    let unlimited = limits(usize::MAX, usize::MAX, usize::MAX);
    let feed = feed_pieces(
        Version::V1_2,
        &unlimited,
        [&b"SEND\na:1\nb:2\n\nbody\0"[..], b"SEND\nk:v"],
    );
    assert_eq!(feed.error, None);
    assert_eq!(feed.items.len(), 1);

    // Head plus body would overflow usize.
    let wire = format!("SEND\ncontent-length:{}\n\n", usize::MAX);
    let feed = feed_pieces(Version::V1_2, &unlimited, [wire.as_bytes()]);
    assert!(
        matches!(feed.error, Some(FrameError::FrameTooLarge { .. })),
        "{:?}",
        feed.error
    );
    // Fits in usize: the parser waits for the body.
    let wire = format!("SEND\ncontent-length:{}\n\nab", usize::MAX - 100);
    let feed = feed_pieces(Version::V1_2, &unlimited, [wire.as_bytes()]);
    assert_eq!(feed.error, None);
    assert!(feed.items.is_empty());
}

#[test]
fn head_size_limit_counts_every_header_line_together() {
    let limits = Limits {
        max_head_size: 40,
        ..Limits::default()
    };
    // 39 bytes of head before the blank line: accepted.
    let ok = b"SEND\ndestination:/a\nx:0123456789abcd\n\n\0";
    let feed = feed_pieces(Version::V1_2, &limits, [&ok[..]]);
    assert_eq!(feed.error, None);
    // Each line short, together too long: refused as the bytes arrive, before the end.
    let long = b"SEND\nh1:0123456789\nh2:0123456789\nh3:0123456789\n";
    let feed = feed_pieces(Version::V1_2, &limits, long.chunks(1));
    assert!(
        matches!(feed.error, Some(FrameError::HeadTooLarge { max: 40, .. })),
        "{:?}",
        feed.error
    );
}

#[test]
fn errors_name_their_numbers() {
    let shown = FrameError::FrameTooLarge {
        size: 70000,
        max: 65536,
    }
    .to_string();
    assert!(
        shown.contains("70000") && shown.contains("65536"),
        "{shown}"
    );
    let shown = FrameError::TooManyHeaders { count: 65, max: 64 }.to_string();
    assert!(shown.contains("65") && shown.contains("64"), "{shown}");
    let shown = FrameError::HeaderLineTooLong { size: 9, max: 8 }.to_string();
    assert!(shown.contains('9') && shown.contains('8'), "{shown}");
    let shown = FrameError::Escape(EscapeError { found: 't' }).to_string();
    assert!(shown.contains("\\t"), "{shown}");
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

/// Whether a `command` frame in `version` carries `name:value` unchanged.
///
/// Escaping (1.1+, not CONNECT/STOMP/CONNECTED) covers `:`, LF and `\`, and in 1.2 CR.
/// Without it a name cannot hold `:` or LF and a value cannot hold LF. A CR right before the
/// line's LF is read as part of a CRLF, so only escaped 1.2 can end a value with CR.
fn representable(command: Command, version: Version, name: &str, value: &str) -> bool {
    let escaped = command.escapes_headers() && version != Version::V1_0;
    if name.is_empty() || name == "content-length" {
        return false;
    }
    if value.ends_with('\r') && !(escaped && version == Version::V1_2) {
        return false;
    }
    if name.contains('\0') || value.contains('\0') {
        return false;
    }
    escaped || !(name.contains([':', '\n', '\r']) || value.contains(['\n', '\r']))
}

/// Changes `name:value` as little as needed to make it [`representable`].
fn make_representable(
    command: Command,
    version: Version,
    name: &str,
    value: &str,
) -> (String, String) {
    let escaped = command.escapes_headers() && version != Version::V1_0;
    let (mut name, mut value) = if escaped {
        (name.replace('\0', "_"), value.replace('\0', "_"))
    } else {
        (
            name.replace([':', '\n', '\r', '\0'], "_"),
            value.replace(['\n', '\r', '\0'], "_"),
        )
    };
    if name.is_empty() || name == "content-length" {
        name.insert(0, '_');
    }
    if value.ends_with('\r') && !(escaped && version == Version::V1_2) {
        value.push('.');
    }
    debug_assert!(representable(command, version, &name, &value));
    (name, value)
}

fn header_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::char::range('a', 'z'),
        3 => prop::sample::select(vec![
            ':', '\n', '\r', '\\', ' ', '\0', '-', 'c', 'n', 'r', 't', 'é', '€', '🦀'
        ]),
        1 => any::<char>(),
    ]
}

fn header_text(min: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(header_char(), min..8).prop_map(String::from_iter)
}

fn body() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..48),
        prop::collection::vec(prop::sample::select(b"\0\n\rab".to_vec()), 0..16),
    ]
    .prop_map(Bytes::from)
}

/// Any frame: names and values may be unrepresentable in some versions.
fn any_frame() -> impl Strategy<Value = Frame> {
    (
        prop::sample::select(COMMANDS.to_vec()),
        prop::collection::vec((header_text(0), header_text(0)), 0..6),
        body(),
    )
        .prop_map(|(command, headers, body)| Frame {
            command,
            headers: headers.into_iter().collect(),
            body,
        })
}

/// A frame every header of which `version` can carry.
fn representable_frame(version: Version) -> impl Strategy<Value = Frame> {
    any_frame().prop_map(move |mut frame| {
        let command = frame.command;
        frame.headers = frame
            .headers
            .iter()
            .map(|(k, v)| make_representable(command, version, k, v))
            .collect();
        frame
    })
}

fn any_version() -> impl Strategy<Value = Version> {
    prop::sample::select(Version::ALL.to_vec())
}

/// Cuts `bytes` at the given points (taken modulo its length), in order.
fn split_at_points<'a>(bytes: &'a [u8], points: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p.index(bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut pieces = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for cut in cuts {
        pieces.push(&bytes[start..cut]);
        start = cut;
    }
    pieces.push(&bytes[start..]);
    pieces
}

fn pick(options: &[&'static [u8]]) -> impl Strategy<Value = Vec<u8>> + use<> {
    prop::sample::select(options.to_vec()).prop_map(<[u8]>::to_vec)
}

/// Header text: ASCII and escapes, sometimes a lone `\\` or CR, rarely any byte.
fn wire_text(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            40 => prop::sample::select(b"abkv01 -:".to_vec()).prop_map(|b| vec![b]),
            8 => pick(&[b"\\n", b"\\c", b"\\\\", b"\\r"]),
            2 => pick(&[b"\\", b"\r", b"\\t"]),
            1 => any::<u8>().prop_map(|b| vec![b]),
        ],
        len,
    )
    .prop_map(|pieces| pieces.concat())
}

/// Byte strings shaped like STOMP frames with mistakes, so random input gets past the
/// command line and reaches every check.
fn stomp_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    let eol = || {
        prop_oneof![
            30 => pick(&[b"\n", b"\r\n"]),
            1 => pick(&[b"\r", b"", b"\n\n"]),
        ]
    };
    let command = prop_oneof![
        30 => prop::sample::select(COMMANDS.to_vec()).prop_map(|c| c.as_str().as_bytes().to_vec()),
        1 => pick(&[b"BOGUS", b"send", b"", b"SEND "]),
    ];
    let header = prop_oneof![
        30 => (wire_text(1..8), wire_text(0..8)).prop_map(|(k, v)| [k, b":".to_vec(), v].concat()),
        4 => (0..12usize).prop_map(|n| format!("content-length:{n}").into_bytes()),
        1 => wire_text(0..4).prop_map(|v| [b"content-length:".to_vec(), v].concat()),
        1 => wire_text(0..8),
    ];
    let body = prop::collection::vec(
        prop_oneof![
            20 => prop::sample::select(b"ab\n\r".to_vec()),
            1 => Just(0u8),
        ],
        0..24,
    );
    let frame = (
        prop::collection::vec(eol(), 0..3),
        command,
        eol(),
        prop::collection::vec((header, eol()), 0..6),
        eol(),
        body,
        prop_oneof![30 => Just(b"\0".to_vec()), 1 => Just(Vec::new())],
    )
        .prop_map(|(beats, command, eol1, headers, eol2, body, nul)| {
            let mut out = beats.concat();
            out.extend(command);
            out.extend(eol1);
            for (header, eol) in headers {
                out.extend(header);
                out.extend(eol);
            }
            out.extend(eol2);
            out.extend(body);
            out.extend(nul);
            out
        });
    prop::collection::vec(frame, 1..4).prop_map(|frames| frames.concat())
}

fn limits_strategy() -> impl Strategy<Value = Limits> {
    prop_oneof![Just(Limits::default()), Just(small_limits())]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn representable_frames_round_trip(
        (version, frame) in any_version().prop_flat_map(|v| (Just(v), representable_frame(v))),
        points in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let wire = frame.encode(version);
        let expected = expected_after_round_trip(&frame);
        prop_assert_eq!(parse_one(version, &wire), Ok(expected.clone()));

        let feed = feed_pieces(version, &Limits::default(), split_at_points(&wire, &points));
        prop_assert_eq!(feed.error, None);
        prop_assert_eq!(feed.items, vec![Parsed::Frame(expected.clone())]);

        let mut feed = Feed::new(version, &Limits::default());
        for (i, b) in wire.iter().enumerate() {
            prop_assert_eq!(feed.push(&[*b]), usize::from(i == wire.len() - 1));
        }
    }

    #[test]
    fn representable_is_exactly_what_round_trips(frame in any_frame(), version in any_version()) {
        let all_representable = frame
            .headers
            .iter()
            .all(|(k, v)| representable(frame.command, version, k, v));
        let wire = frame.encode(version);
        let outcome = feed_pieces(version, &Limits::default(), [&wire[..]]);
        let round_tripped = outcome.error.is_none()
            && outcome.buf.is_empty()
            && outcome.items == [Parsed::Frame(expected_after_round_trip(&frame))];
        prop_assert_eq!(round_tripped, all_representable, "{:?}", wire);
    }

    #[test]
    fn any_frame_encodes_to_exactly_one_frame(frame in any_frame(), version in any_version()) {
        // Whatever the headers hold, nothing leaks into other headers, the body or a next
        // frame (names must be non-empty and `content-length` is the encoder's to write).
        let mut frame = frame;
        frame.headers = frame
            .headers
            .iter()
            .filter(|(k, _)| !k.is_empty() && *k != "content-length")
            .collect();
        let wire = frame.encode(version);
        let parsed = parse_one(version, &wire).unwrap();
        prop_assert_eq!(parsed.command, frame.command);
        prop_assert_eq!(&parsed.body, &frame.body);
        prop_assert!(parsed.headers.len() <= frame.headers.len() + 1);
        if !frame.body.is_empty() {
            prop_assert_eq!(parsed.get("content-length"), Some(&*frame.body.len().to_string()));
        }
    }

    #[test]
    fn streams_of_frames_and_heart_beats_round_trip(
        (version, frames) in any_version().prop_flat_map(|v| {
            (Just(v), prop::collection::vec((representable_frame(v), 0..3usize), 1..5))
        }),
        points in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut wire = BytesMut::new();
        let mut expected = Vec::new();
        for (frame, beats) in &frames {
            encode_into(frame, version, &mut wire);
            expected.push(Parsed::Frame(expected_after_round_trip(frame)));
            for i in 0..*beats {
                wire.extend_from_slice(if i % 2 == 0 { b"\n" } else { b"\r\n" });
                expected.push(Parsed::HeartBeat);
            }
        }
        let feed = feed_pieces(version, &Limits::default(), split_at_points(&wire, &points));
        prop_assert_eq!(feed.error, None);
        prop_assert_eq!(feed.items, expected);
        prop_assert!(feed.buf.is_empty());
    }

    #[test]
    fn arbitrary_bytes_parse_the_same_whole_or_in_pieces(
        bytes in prop_oneof![prop::collection::vec(any::<u8>(), 0..256), stomp_like_bytes()],
        version in any_version(),
        limits in limits_strategy(),
        points in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let whole = feed_pieces(version, &limits, [&bytes[..]]);
        let pieces = feed_pieces(version, &limits, split_at_points(&bytes, &points));
        let bytewise = feed_pieces(version, &limits, bytes.iter().map(std::slice::from_ref));
        for chunked in [&pieces, &bytewise] {
            prop_assert_eq!(&chunked.items, &whole.items);
            prop_assert_eq!(chunked.failed(), whole.failed());
            if let (Some(w), Some(c)) = (&whole.error, &chunked.error) {
                // Limits are checked as bytes arrive, so a chunked feed may trip one earlier
                // in the frame; any other error is the same.
                if !is_limit_error(c) {
                    prop_assert_eq!(c, w);
                }
                if is_limit_error(w) {
                    prop_assert!(is_limit_error(c), "{:?} whole, {:?} chunked", w, c);
                }
            }
            if !whole.failed() {
                prop_assert_eq!(&chunked.buf, &whole.buf);
            }
        }
    }

    #[test]
    fn the_shared_message_encoder_writes_what_frame_encode_writes(
        frame in any_frame(),
        version in any_version(),
        subscription in header_text(1),
        ack in prop::option::of(any::<u64>()),
    ) {
        // What a subscriber receives from the broker (per-subscription head + shared part)
        // is byte for byte the MESSAGE frame the general encoder makes of the same headers.
        let forwarded = frame.headers.filter(|k| k != "content-length");
        let mut whole = Frame::new(Command::Message).header("subscription", subscription.as_str());
        if let Some(id) = ack {
            whole = whole.header("ack", id.to_string());
        }
        whole = whole
            .header("destination", "/topic/t")
            .header("message-id", "m-1")
            .header("content-type", "text/plain")
            .header("content-length", frame.body.len().to_string());
        for (k, v) in forwarded.iter() {
            whole = whole.header(k, v);
        }
        whole.body = frame.body.clone();
        let mut split = super::message_head(&subscription, ack, version).to_vec();
        split.extend_from_slice(&super::message_shared(
            "/topic/t",
            "m-1",
            Some("text/plain"),
            &forwarded,
            &frame.body,
            version,
        ));
        prop_assert_eq!(&split[..], &whole.encode(version)[..]);
    }

    #[test]
    fn parsed_frames_re_encode_to_themselves_in_v12(bytes in stomp_like_bytes()) {
        let feed = feed_pieces(Version::V1_2, &Limits::default(), [&bytes[..]]);
        for item in feed.items {
            let Parsed::Frame(frame) = item else { continue };
            if !frame.command.escapes_headers() {
                continue;
            }
            // No limits: escaping and the added `content-length` may grow the frame.
            let unlimited = limits(usize::MAX, usize::MAX, usize::MAX);
            let wire = frame.encode(Version::V1_2);
            let again = feed_pieces(Version::V1_2, &unlimited, [&wire[..]]);
            prop_assert_eq!(again.error, None);
            prop_assert_eq!(again.items, vec![Parsed::Frame(expected_after_round_trip(&frame))]);
            prop_assert!(again.buf.is_empty());
        }
    }
}
