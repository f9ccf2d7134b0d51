//! The ready queues: one per task, a FIFO per priority.

use std::collections::VecDeque;

use atmo_core::RequestId;

use super::slab::Slab;

/// A level's deque is shrunk when it empties with more capacity than this, so a burst does not
/// keep its memory forever.
const LEVEL_KEEP: usize = 4096;

/// A pending request in a ready queue.
pub(super) struct ReadyItem {
    /// Queue order across the tasks of a claim (lower first within a priority).
    pub(super) seq: u64,
    pub(super) slot: u32,
    /// Tells a live entry from a stale one whose slot was reused.
    pub(super) id: RequestId,
}

/// The pending requests of one task: a FIFO per priority and a bitmap of the non-empty ones.
#[derive(Default)]
pub(super) struct ReadyQueue {
    /// Indexed by priority; grown to the highest priority seen.
    levels: Vec<VecDeque<ReadyItem>>,
    nonempty: [u64; 4],
}

impl ReadyQueue {
    pub(super) fn push(&mut self, priority: u8, item: ReadyItem) {
        let p = usize::from(priority);
        if self.levels.len() <= p {
            self.levels.resize_with(p + 1, VecDeque::new);
        }
        if let Some(level) = self.levels.get_mut(p) {
            level.push_back(item);
            self.nonempty[p / 64] |= 1 << (p % 64);
        }
    }

    /// The highest non-empty priority.
    fn top(&self) -> Option<usize> {
        (0..4).rev().find_map(|w| {
            let bits = self.nonempty[w];
            (bits != 0).then(|| w * 64 + 63 - bits.leading_zeros() as usize)
        })
    }

    fn mark_empty(&mut self, p: usize) {
        self.nonempty[p / 64] &= !(1 << (p % 64));
        if let Some(level) = self.levels.get_mut(p)
            && level.capacity() > LEVEL_KEEP
        {
            level.shrink_to_fit();
        }
    }

    /// The priority and sequence number of the best live entry, dropping the stale entries in
    /// front of it (and counting them off `items`).
    pub(super) fn live_head(&mut self, slab: &Slab, items: &mut usize) -> Option<(u8, u64)> {
        loop {
            let p = self.top()?;
            let level = self.levels.get_mut(p)?;
            while let Some(front) = level.front() {
                if slab.is_pending(front.slot, front.id) {
                    return Some((p as u8, front.seq));
                }
                level.pop_front();
                *items -= 1;
            }
            self.mark_empty(p);
        }
    }

    pub(super) fn pop(&mut self, priority: u8) -> Option<ReadyItem> {
        let p = usize::from(priority);
        let level = self.levels.get_mut(p)?;
        let item = level.pop_front();
        if level.is_empty() {
            self.mark_empty(p);
        }
        item
    }

    /// Keeps the entries `keep` accepts; returns how many remain.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&ReadyItem) -> bool) -> usize {
        let mut n = 0;
        for p in 0..self.levels.len() {
            let Some(level) = self.levels.get_mut(p) else { continue };
            level.retain(&mut keep);
            n += level.len();
            if level.is_empty() {
                self.mark_empty(p);
            }
        }
        n
    }
}
