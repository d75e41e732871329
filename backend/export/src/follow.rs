//! Following documents through a bundle's transitions in little memory: a document's state
//! with its parties as numbers, keyed by its reference inline. The writer and the verifier
//! each follow every document of a range; a million entries may hold a quarter of a million
//! documents.

use std::collections::HashMap;
use std::hash::BuildHasher;

use lading_domain::ids::{DocumentReference, PartyId, Timestamp};
use lading_domain::{Digest, DocumentState, Status, SurrenderKind};

/// A document's reference inline (at most 20 bytes), ordered as the references are.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RefKey {
    len: u8,
    bytes: [u8; 20],
}

impl RefKey {
    pub(crate) fn of(reference: &DocumentReference) -> Result<Self, String> {
        let text = reference.as_str().as_bytes();
        let mut bytes = [0u8; 20];
        bytes
            .get_mut(..text.len())
            .ok_or_else(|| format!("{reference}: a reference has at most 20 characters"))?
            .copy_from_slice(text);
        Ok(Self {
            len: text.len() as u8,
            bytes,
        })
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl Ord for RefKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl PartialOrd for RefKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Values by document reference, in little memory: each value beside its key in fixed-size
/// chunks (no doubling, no copy as they grow), found through a hash table of four-byte slot
/// numbers. A million entries may hold a quarter of a million documents; a `BTreeMap` of them
/// took half as much again, a `HashMap` keyed by reference a table of 28-byte buckets.
pub(crate) struct ByReference<T> {
    index: hashbrown::HashTable<u32>,
    hasher: std::hash::RandomState,
    chunks: Vec<Vec<(RefKey, T)>>,
    len: usize,
}

const CHUNK: usize = 4096;

impl<T> Default for ByReference<T> {
    fn default() -> Self {
        Self {
            index: hashbrown::HashTable::new(),
            hasher: std::hash::RandomState::new(),
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> ByReference<T> {
    fn at(chunks: &[Vec<(RefKey, T)>], slot: u32) -> Option<&(RefKey, T)> {
        let slot = slot as usize;
        chunks.get(slot / CHUNK)?.get(slot % CHUNK)
    }

    fn find(&self, key: &RefKey) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        self.index
            .find(hash, |slot| {
                Self::at(&self.chunks, *slot).is_some_and(|(k, _)| k == key)
            })
            .copied()
    }

    pub(crate) fn get(&self, key: &RefKey) -> Option<&T> {
        Self::at(&self.chunks, self.find(key)?).map(|(_, v)| v)
    }

    pub(crate) fn get_mut(&mut self, key: &RefKey) -> Option<&mut T> {
        let slot = self.find(key)? as usize;
        self.chunks
            .get_mut(slot / CHUNK)?
            .get_mut(slot % CHUNK)
            .map(|(_, v)| v)
    }

    /// Adds the value of a key not there yet (a key there already keeps its value).
    pub(crate) fn insert(&mut self, key: RefKey, value: T) {
        if self.find(&key).is_some() {
            return;
        }
        let slot = self.len as u32;
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.push((key, value));
        }
        self.len += 1;
        let Self {
            index,
            hasher,
            chunks,
            ..
        } = self;
        index.insert_unique(hasher.hash_one(key), slot, |slot| {
            Self::at(chunks, *slot).map_or(0, |(k, _)| hasher.hash_one(k))
        });
    }

    /// The keys, in no order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &RefKey> {
        self.chunks.iter().flatten().map(|(k, _)| k)
    }

    /// Every key with its value, in reference order (the hash table is let go first).
    pub(crate) fn sorted(mut self) -> impl Iterator<Item = (RefKey, T)> {
        self.index = hashbrown::HashTable::new();
        let mut order: Vec<u32> = (0..self.len as u32).collect();
        let chunks = &self.chunks;
        order.sort_unstable_by(|a, b| {
            let key = |s: &u32| Self::at(chunks, *s).map(|(k, _)| *k);
            key(a).cmp(&key(b))
        });
        let mut chunks: Vec<Vec<Option<(RefKey, T)>>> = self
            .chunks
            .into_iter()
            .map(|c| c.into_iter().map(Some).collect())
            .collect();
        order.into_iter().filter_map(move |slot| {
            let slot = slot as usize;
            chunks.get_mut(slot / CHUNK)?.get_mut(slot % CHUNK)?.take()
        })
    }
}

/// Parties by number, so a followed document's state holds four-byte numbers, not strings.
#[derive(Default)]
pub(crate) struct Interner {
    ids: Vec<PartyId>,
    numbers: HashMap<PartyId, u32>,
}

const NO_PARTY: u32 = u32::MAX;

impl Interner {
    fn number(&mut self, id: &PartyId) -> u32 {
        if let Some(n) = self.numbers.get(id) {
            return *n;
        }
        let n = self.ids.len() as u32;
        self.ids.push(id.clone());
        self.numbers.insert(id.clone(), n);
        n
    }

    fn number_of(&mut self, id: Option<&PartyId>) -> u32 {
        id.map_or(NO_PARTY, |id| self.number(id))
    }

    pub(crate) fn id(&self, n: u32) -> Option<PartyId> {
        self.ids.get(n as usize).cloned()
    }
}

/// A [`DocumentState`] without its reference (the key holds it) and with parties by number.
pub(crate) struct CompactState {
    document_checksum: Digest,
    head: Digest,
    head_time: Option<Timestamp>,
    length: u64,
    carrier: u32,
    consignee: u32,
    pub(crate) possessor: u32,
    endorsee: u32,
    surrender_requested_by: u32,
    pub(crate) status: Status,
    pending_surrender: Option<SurrenderKind>,
    is_to_order: bool,
    endorsee_may_endorse: bool,
    blank_endorsed: bool,
}

impl CompactState {
    pub(crate) fn of(s: &DocumentState, parties: &mut Interner) -> Self {
        Self {
            document_checksum: s.document_checksum,
            head: s.head,
            head_time: s.head_time,
            length: s.length,
            carrier: parties.number(&s.carrier),
            consignee: parties.number_of(s.consignee.as_ref()),
            possessor: parties.number(&s.possessor),
            endorsee: parties.number_of(s.endorsee.as_ref()),
            surrender_requested_by: parties.number_of(s.surrender_requested_by.as_ref()),
            status: s.status,
            pending_surrender: s.pending_surrender,
            is_to_order: s.is_to_order,
            endorsee_may_endorse: s.endorsee_may_endorse,
            blank_endorsed: s.blank_endorsed,
        }
    }

    pub(crate) fn state(
        &self,
        reference: DocumentReference,
        parties: &Interner,
    ) -> Result<DocumentState, String> {
        let party = |n: u32| {
            parties
                .id(n)
                .ok_or_else(|| "a party number without a party".to_owned())
        };
        Ok(DocumentState {
            reference,
            document_checksum: self.document_checksum,
            carrier: party(self.carrier)?,
            consignee: parties.id(self.consignee),
            is_to_order: self.is_to_order,
            status: self.status,
            possessor: party(self.possessor)?,
            endorsee: parties.id(self.endorsee),
            endorsee_may_endorse: self.endorsee_may_endorse,
            blank_endorsed: self.blank_endorsed,
            head: self.head,
            pending_surrender: self.pending_surrender,
            surrender_requested_by: parties.id(self.surrender_requested_by),
            length: self.length,
            head_time: self.head_time,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_order_as_their_text_does() {
        let mut refs = ["B", "A10", "A", "A1", "a", "Z9/1"];
        let mut keys: Vec<RefKey> = refs
            .iter()
            .map(|r| RefKey::of(&r.parse().expect("reference")).expect("key"))
            .collect();
        keys.sort();
        refs.sort();
        assert_eq!(keys.iter().map(RefKey::as_str).collect::<Vec<_>>(), refs);
    }

    #[test]
    fn values_by_reference_come_back_in_reference_order_across_chunks() {
        let mut table = ByReference::default();
        let n = CHUNK * 2 + 7;
        for i in (0..n).rev() {
            let key = RefKey::of(&format!("R{i:06}").parse().expect("reference")).expect("key");
            table.insert(key, i);
            table.insert(key, usize::MAX);
        }
        let probe = RefKey::of(&"R000003".parse().expect("reference")).expect("key");
        assert_eq!(table.get(&probe), Some(&3));
        if let Some(v) = table.get_mut(&probe) {
            *v = 30;
        }
        assert_eq!(table.keys().count(), n);
        let sorted: Vec<(String, usize)> = table
            .sorted()
            .map(|(k, v)| (k.as_str().to_owned(), v))
            .collect();
        assert_eq!(sorted.len(), n);
        assert_eq!(sorted[3], ("R000003".to_owned(), 30));
        assert!(sorted.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(sorted
            .iter()
            .enumerate()
            .all(|(i, (_, v))| *v == i || i == 3));
    }
}
