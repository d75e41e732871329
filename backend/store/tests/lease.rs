//! The sequencer's lease: one session of a database holds it at a time, and it goes with the
//! session.

// Integration tests: clippy.toml allows unwrap/expect/panic in test code.
#![cfg(test)]

use lading_store::lease;
use lading_store::testing::TestDatabase;

#[test]
fn one_session_holds_the_lease_and_it_goes_with_the_session() {
    let db = TestDatabase::new().unwrap();
    let mut first = db.writer_connection().unwrap();
    let mut second = db.writer_connection().unwrap();
    assert!(!lease::is_held(&mut second).unwrap());

    assert!(lease::try_take(&mut first).unwrap());
    assert!(lease::is_held(&mut second).unwrap());
    assert!(!lease::try_take(&mut second).unwrap(), "two holders");
    // Taken again by its holder: still one holder (the lock counts, the lease is the same).
    assert!(lease::try_take(&mut first).unwrap());
    assert!(!lease::try_take(&mut second).unwrap());

    // The holder's session ends (a process killed closes its sockets): the lease is free.
    drop(first);
    let mut waited = 0;
    while !lease::try_take(&mut second).unwrap() {
        waited += 1;
        assert!(waited < 500, "the lease outlived its session");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(lease::is_held(&mut second).unwrap());

    // Another database's lease is another lock.
    let other = TestDatabase::new().unwrap();
    let mut elsewhere = other.writer_connection().unwrap();
    assert!(lease::try_take(&mut elsewhere).unwrap());
}
