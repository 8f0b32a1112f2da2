use super::*;

const DELAY: Duration = Duration::from_millis(50);
const SOON: Duration = Duration::from_millis(5);

fn key(code: KeyCode) -> Event {
    Event::Key(code.into())
}

fn with(code: KeyCode, mods: KeyModifiers) -> Event {
    Event::Key(KeyEvent::new(code, mods))
}

/// What crossterm reports for `bytes` when the ESC came alone: Esc, then one key per byte
/// (an uppercase letter with Shift).
fn split(bytes: &[u8]) -> Vec<Event> {
    bytes
        .iter()
        .map(|&b| match b {
            0x1b => key(KeyCode::Esc),
            b'A'..=b'Z' => with(KeyCode::Char(b as char), KeyModifiers::SHIFT),
            _ => key(KeyCode::Char(b as char)),
        })
        .collect()
}

/// Feeds `events` `gap` apart, expiring the hold whenever its deadline passed first; then
/// lets the delay run out.
fn run(join: &mut EscJoin, events: &[Event], gap: Duration) -> Vec<Event> {
    let mut now = Instant::now();
    let mut out = Vec::new();
    for e in events {
        now += gap;
        if join.deadline().is_some_and(|d| d <= now) {
            out.extend(join.expire());
        }
        out.extend(join.push(e.clone(), now));
    }
    out.extend(join.expire());
    out
}

fn joined(bytes: &[u8]) -> Vec<Event> {
    run(&mut EscJoin::new(DELAY), &split(bytes), SOON)
}

/// Every key the stage reassembles, with the bytes a terminal sends for it.
fn table() -> Vec<(&'static [u8], Event)> {
    let none = KeyModifiers::NONE;
    let shift = KeyModifiers::SHIFT;
    let ctrl = KeyModifiers::CONTROL;
    let alt = KeyModifiers::ALT;
    vec![
        (b"\x1b[A", key(KeyCode::Up)),
        (b"\x1b[B", key(KeyCode::Down)),
        (b"\x1b[C", key(KeyCode::Right)),
        (b"\x1b[D", key(KeyCode::Left)),
        (b"\x1b[H", key(KeyCode::Home)),
        (b"\x1b[F", key(KeyCode::End)),
        (b"\x1bOA", key(KeyCode::Up)),
        (b"\x1bOB", key(KeyCode::Down)),
        (b"\x1bOC", key(KeyCode::Right)),
        (b"\x1bOD", key(KeyCode::Left)),
        (b"\x1bOH", key(KeyCode::Home)),
        (b"\x1bOF", key(KeyCode::End)),
        (b"\x1bOP", key(KeyCode::F(1))),
        (b"\x1bOQ", key(KeyCode::F(2))),
        (b"\x1bOR", key(KeyCode::F(3))),
        (b"\x1bOS", key(KeyCode::F(4))),
        (b"\x1b[[A", key(KeyCode::F(1))),
        (b"\x1b[[E", key(KeyCode::F(5))),
        (b"\x1b[1~", key(KeyCode::Home)),
        (b"\x1b[2~", key(KeyCode::Insert)),
        (b"\x1b[3~", key(KeyCode::Delete)),
        (b"\x1b[4~", key(KeyCode::End)),
        (b"\x1b[5~", key(KeyCode::PageUp)),
        (b"\x1b[6~", key(KeyCode::PageDown)),
        (b"\x1b[7~", key(KeyCode::Home)),
        (b"\x1b[8~", key(KeyCode::End)),
        (b"\x1b[11~", key(KeyCode::F(1))),
        (b"\x1b[15~", key(KeyCode::F(5))),
        (b"\x1b[17~", key(KeyCode::F(6))),
        (b"\x1b[21~", key(KeyCode::F(10))),
        (b"\x1b[23~", key(KeyCode::F(11))),
        (b"\x1b[24~", key(KeyCode::F(12))),
        (b"\x1b[Z", with(KeyCode::BackTab, shift)),
        (b"\x1b[1;2A", with(KeyCode::Up, shift)),
        (b"\x1b[1;3B", with(KeyCode::Down, alt)),
        (b"\x1b[1;5C", with(KeyCode::Right, ctrl)),
        (b"\x1b[1;8D", with(KeyCode::Left, shift | alt | ctrl)),
        (b"\x1b[1;5H", with(KeyCode::Home, ctrl)),
        (b"\x1b[1;2P", with(KeyCode::F(1), shift)),
        (b"\x1b[1;6S", with(KeyCode::F(4), shift | ctrl)),
        (b"\x1b[3;5~", with(KeyCode::Delete, ctrl)),
        (b"\x1b[5;2~", with(KeyCode::PageUp, shift)),
        (b"\x1b[24;7~", with(KeyCode::F(12), alt | ctrl)),
        (b"\x1b[24;1~", with(KeyCode::F(12), none)),
    ]
}

#[test]
fn every_sequence_split_after_its_esc_is_one_key() {
    for (bytes, want) in table() {
        assert_eq!(
            joined(bytes),
            vec![want],
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

/// Each byte may come in a read of its own: what counts is the time between them.
#[test]
fn a_slow_gap_anywhere_delivers_the_keys_as_typed() {
    for (bytes, _) in table() {
        for at in 1..bytes.len() {
            let mut join = EscJoin::new(DELAY);
            let events = split(bytes);
            let mut out = run(&mut join, &events[..at], SOON);
            out.extend(run(&mut join, &events[at..], DELAY * 2));
            // The first slow gap lets the hold go; the rest are plain keys.
            assert_eq!(
                out,
                events,
                "{:?} slow at {at}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}

#[test]
fn gaps_just_inside_the_delay_still_join() {
    let events = split(b"\x1b[24~");
    let out = run(&mut EscJoin::new(DELAY), &events, DELAY - SOON);
    assert_eq!(out, vec![key(KeyCode::F(12))]);
}

#[test]
fn a_lone_esc_goes_on_once_the_delay_runs_out() {
    let mut join = EscJoin::new(DELAY);
    let t0 = Instant::now();
    assert!(join.push(key(KeyCode::Esc), t0).is_empty());
    assert_eq!(join.deadline(), Some(t0 + DELAY));
    assert_eq!(join.expire(), vec![key(KeyCode::Esc)]);
    assert_eq!(join.deadline(), None);
    assert!(join.expire().is_empty());
}

#[test]
fn esc_then_q_typed_slowly_stays_esc_and_q() {
    let out = run(&mut EscJoin::new(DELAY), &split(b"\x1bq"), DELAY * 2);
    assert_eq!(out, split(b"\x1bq"));
}

#[test]
fn esc_then_a_key_that_starts_no_sequence_goes_on_at_once() {
    let mut join = EscJoin::new(DELAY);
    let t0 = Instant::now();
    assert!(join.push(key(KeyCode::Esc), t0).is_empty());
    let out = join.push(key(KeyCode::Char('q')), t0 + SOON);
    assert_eq!(out, split(b"\x1bq"));
    assert_eq!(join.deadline(), None);
    // A non-character key too.
    join.push(key(KeyCode::Esc), t0);
    let out = join.push(key(KeyCode::Enter), t0 + SOON);
    assert_eq!(out, vec![key(KeyCode::Esc), key(KeyCode::Enter)]);
}

#[test]
fn a_sequence_broken_off_goes_on_as_typed() {
    // `ESC [ 2 !`: `!` is neither a parameter nor a final byte, `ESC [ [ z` no Linux console key, `ESC O x` no SS3.
    for bytes in [&b"\x1b[2!"[..], b"\x1b[[z", b"\x1bOx", b"\x1b[1;\t"] {
        assert_eq!(
            joined(bytes),
            split(bytes),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn a_whole_sequence_that_names_no_key_is_dropped() {
    for bytes in [
        &b"\x1b[24;80R"[..],
        b"\x1b[99~",
        b"\x1b[2;3;4A",
        b"\x1b[x",
        b"\x1b[999~",
    ] {
        assert_eq!(
            joined(bytes),
            vec![],
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn an_endless_parameter_list_is_not_held_forever() {
    let bytes = b"\x1b[11111111111111111111";
    assert_eq!(joined(bytes), split(bytes));
}

#[test]
fn alt_keys_as_crossterm_reports_them_pass() {
    let alt_x = with(KeyCode::Char('x'), KeyModifiers::ALT);
    let alt_bracket = with(KeyCode::Char('['), KeyModifiers::ALT);
    let out = run(
        &mut EscJoin::new(DELAY),
        &[alt_x.clone(), alt_bracket.clone()],
        SOON,
    );
    assert_eq!(out, vec![alt_x.clone(), alt_bracket]);
    // An Alt key after a held Esc ends the hold.
    let out = run(
        &mut EscJoin::new(DELAY),
        &[key(KeyCode::Esc), alt_x.clone()],
        SOON,
    );
    assert_eq!(out, vec![key(KeyCode::Esc), alt_x]);
}

#[test]
fn a_burst_of_sequences_and_keys_comes_out_in_order() {
    let bytes = b"\x1b[B\x1b[Bj\x1bOP\x1b\x1b[24~\x1b[1;5A";
    assert_eq!(
        joined(bytes),
        vec![
            key(KeyCode::Down),
            key(KeyCode::Down),
            key(KeyCode::Char('j')),
            key(KeyCode::F(1)),
            key(KeyCode::Esc),
            key(KeyCode::F(12)),
            with(KeyCode::Up, KeyModifiers::CONTROL),
        ]
    );
}

#[test]
fn other_events_end_the_hold_in_order() {
    let events = [
        key(KeyCode::Esc),
        key(KeyCode::Char('[')),
        Event::Resize(80, 24),
    ];
    let out = run(&mut EscJoin::new(DELAY), &events, SOON);
    assert_eq!(out, events.to_vec());
}

#[test]
fn keys_that_come_whole_pass_untouched() {
    let events = [
        key(KeyCode::Down),
        key(KeyCode::Char('[')),
        with(KeyCode::Char('D'), KeyModifiers::SHIFT),
        Event::FocusGained,
    ];
    assert_eq!(
        run(&mut EscJoin::new(DELAY), &events, SOON),
        events.to_vec()
    );
}

#[test]
fn a_zero_delay_holds_nothing() {
    let events = split(b"\x1b[B");
    let mut join = EscJoin::new(Duration::ZERO);
    let now = Instant::now();
    for e in &events {
        assert_eq!(join.push(e.clone(), now), vec![e.clone()]);
        assert_eq!(join.deadline(), None);
    }
}

/// The serial pane sends a reassembled key to the guest as the bytes the terminal sent.
#[test]
fn reassembled_keys_reach_the_guest_as_the_same_bytes() {
    for (bytes, _) in table() {
        let [Event::Key(k)] = joined(bytes)[..] else {
            panic!("{bytes:?} did not join");
        };
        if !k.modifiers.difference(KeyModifiers::SHIFT).is_empty()
            || matches!(k.code, KeyCode::F(5..))
            || bytes.starts_with(b"\x1b[[")
            || bytes.len() > 4
        {
            continue; // keys the pane sends in one spelling only
        }
        let Some(sent) = crate::tui::serial::key_bytes(&k) else {
            continue;
        };
        let same = sent == bytes
            // CSI and SS3 spell the same arrows, Home/End and F1–F4; `1~`/`7~` Home, `4~`/`8~` End.
            || (sent[..2] == *b"\x1b[" && bytes[..2] == *b"\x1bO" && sent[2..] == bytes[2..])
            || (sent[..2] == *b"\x1bO" && bytes[..2] == *b"\x1b[" && sent[2..] == bytes[2..])
            || matches!(k.code, KeyCode::Home | KeyCode::End);
        assert!(same, "{bytes:?} went to the guest as {sent:?}");
    }
    // The ones the issue names, exactly.
    for bytes in [
        &b"\x1b[A"[..],
        b"\x1b[B",
        b"\x1b[C",
        b"\x1b[D",
        b"\x1b[5~",
        b"\x1b[6~",
        b"\x1b[3~",
        b"\x1b[2~",
        b"\x1b[Z",
        b"\x1bOP",
    ] {
        let [Event::Key(k)] = joined(bytes)[..] else {
            panic!("{bytes:?} did not join");
        };
        assert_eq!(crate::tui::serial::key_bytes(&k).as_deref(), Some(bytes));
    }
}
