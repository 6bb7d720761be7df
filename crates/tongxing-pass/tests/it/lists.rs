use tongxing_pass::{
    Algorithm, Entry, RevocationDelta, RevocationHash, RevocationLog, RevocationSet, Signer, Stage, TrustList,
};

use crate::common::T0;

fn h(i: u32) -> RevocationHash {
    RevocationHash::of_person(&i.to_be_bytes())
}

#[test]
fn trust_list_signed_with_the_anchor_round_trips() {
    let (list_signer, _) = Signer::generate(Algorithm::Es256).unwrap();
    let (a, _) = Signer::generate(Algorithm::Es256).unwrap();
    let (b, _) = Signer::generate(Algorithm::Ed25519).unwrap();
    let mut trust = TrustList::new(7, T0);
    trust.add(a.public_key().clone(), T0 - 86400).unwrap();
    trust.add(b.public_key().clone(), T0).unwrap();
    trust.retire(&a.kid(), T0 + 100, 900).unwrap();
    assert!(trust.add(b.public_key().clone(), T0).is_err(), "one key id once");
    let signed = trust.sign(&list_signer);
    let back = TrustList::verify(&signed, list_signer.public_key()).unwrap();
    assert_eq!(back, trust);
    assert_eq!(back.get(&a.kid()).unwrap().verifies_until, Some(T0 + 1000));

    // Another anchor, a tampered list, a revocation list passed off as a trust list.
    let (other, _) = Signer::generate(Algorithm::Es256).unwrap();
    assert_eq!(TrustList::verify(&signed, other.public_key()).unwrap_err().stage, Stage::UnknownKey);
    let mut bad = signed.clone();
    let n = bad.len();
    bad[n - 80] ^= 1;
    assert_eq!(TrustList::verify(&bad, list_signer.public_key()).unwrap_err().stage, Stage::BadSignature);
    let revs = RevocationSet::new(1, T0, vec![]).sign(&list_signer);
    assert_eq!(TrustList::verify(&revs, list_signer.public_key()).unwrap_err().stage, Stage::BadClaims);
    let mut pruned = trust.clone();
    pruned.prune(T0 + 1000);
    assert_eq!(pruned.len(), 1);
}

#[test]
fn revocation_set_lookup_at_every_size() {
    for n in [0u32, 1, 2, 5, 100, 10_000] {
        let entries: Vec<Entry> = (0..n).map(|i| Entry { hash: h(i), cutoff: i as i64 }).collect();
        let set = RevocationSet::new(1, T0, entries);
        assert_eq!(set.len(), n as usize);
        for i in 0..n {
            assert_eq!(set.lookup(&h(i)), Some(i as i64));
        }
        for i in n..n + 100 {
            assert_eq!(set.lookup(&h(i)), None);
        }
    }
    // Two entries for one hash: the later cut-off wins.
    let set = RevocationSet::new(1, T0, vec![Entry { hash: h(1), cutoff: 5 }, Entry { hash: h(1), cutoff: 9 }]);
    assert_eq!((set.len(), set.lookup(&h(1))), (1, Some(9)));
}

#[test]
fn deltas_bring_a_checkpoint_to_the_full_list() {
    let (list_signer, _) = Signer::generate(Algorithm::Es256).unwrap();
    let anchor = list_signer.public_key();
    let mut log = RevocationLog::new();
    for i in 0..1000 {
        log.revoke(h(i), T0 + i as i64);
    }
    let full = log.full(T0);
    let signed = full.sign(&list_signer);
    let mut checkpoint = RevocationSet::verify(&signed, anchor).unwrap();
    assert_eq!(checkpoint, full);
    let v1 = log.version();

    // A day: new entries, changed cut-offs, people back to green.
    for i in 1000..1300 {
        log.revoke(h(i), T0 + 86400);
    }
    for i in 0..50 {
        log.revoke(h(i), T0 + 90000);
    }
    for i in 100..200 {
        log.reinstate(h(i));
    }
    log.reinstate(h(150)); // twice: still one removal
    log.revoke(h(199), T0 + 1); // removed then revoked again in the same delta
    let delta = log.delta_since(v1, T0 + 86400).unwrap();
    assert_eq!((delta.upserts.len(), delta.removals.len()), (351, 99));
    let signed_delta = delta.sign(&list_signer);
    let delta_back = RevocationDelta::verify(&signed_delta, anchor).unwrap();
    assert_eq!(delta_back, delta);
    checkpoint = checkpoint.apply(&delta_back).unwrap();
    assert_eq!(checkpoint, log.full(T0 + 86400));
    assert_eq!(checkpoint.lookup(&h(150)), None);
    assert_eq!(checkpoint.lookup(&h(10)), Some(T0 + 90000));

    // A delta from the wrong version is refused; a delta is not a full list.
    assert!(checkpoint.apply(&delta_back).is_err());
    assert_eq!(RevocationSet::verify(&signed_delta, anchor).unwrap_err().stage, Stage::BadClaims);
    // After the removals are forgotten, old clients get no delta (they fetch the full list).
    log.forget_removals_through(log.version());
    assert!(log.delta_since(v1, T0).is_none());
    assert!(log.delta_since(log.version(), T0).unwrap().upserts.is_empty());
}
