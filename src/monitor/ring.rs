//! A fixed-size ring buffer: the history of one series. Its memory is allocated once, so a
//! console left running for months holds exactly as much as after ten minutes.

/// The newest `capacity` values pushed, oldest first when iterated.
#[derive(Debug, Clone, PartialEq)]
pub struct Ring<T> {
    buf: Vec<T>,
    /// Where the next value goes once the buffer is full.
    head: usize,
    capacity: usize,
}

impl<T: Copy> Ring<T> {
    /// A ring of at least one slot (a zero capacity would make `push` a silent no-op).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            buf: Vec::with_capacity(capacity),
            head: 0,
            capacity,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Adds a value, dropping the oldest when full.
    pub fn push(&mut self, value: T) {
        if self.buf.len() < self.capacity {
            self.buf.push(value);
        } else {
            self.buf[self.head] = value;
            self.head = (self.head + 1) % self.capacity;
        }
    }

    /// The newest value.
    pub fn last(&self) -> Option<T> {
        if self.buf.is_empty() {
            return None;
        }
        let i = if self.buf.len() < self.capacity {
            self.buf.len() - 1
        } else {
            (self.head + self.capacity - 1) % self.capacity
        };
        self.buf.get(i).copied()
    }

    /// Values oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = T> + '_ {
        let (newer, older) = self.buf.split_at(self.head.min(self.buf.len()));
        older.iter().chain(newer.iter()).copied()
    }

    /// The newest `n` values, oldest first (fewer when the ring holds fewer).
    pub fn tail(&self, n: usize) -> Vec<T> {
        let skip = self.len().saturating_sub(n);
        self.iter().skip(skip).collect()
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_the_newest_in_order() {
        let mut r = Ring::new(3);
        assert_eq!(r.last(), None);
        for v in 1..=5 {
            r.push(v);
        }
        assert_eq!(r.iter().collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(r.last(), Some(5));
        assert_eq!(r.tail(2), [4, 5]);
        assert_eq!(r.tail(9), [3, 4, 5]);
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn zero_capacity_is_one() {
        let mut r = Ring::new(0);
        r.push(1);
        r.push(2);
        assert_eq!(r.iter().collect::<Vec<_>>(), [2]);
    }

    proptest! {
        #[test]
        fn behaves_like_the_tail_of_a_vec(cap in 1usize..20, values in proptest::collection::vec(any::<i32>(), 0..100)) {
            let mut r = Ring::new(cap);
            for v in &values {
                r.push(*v);
            }
            let start = values.len().saturating_sub(cap);
            prop_assert_eq!(r.iter().collect::<Vec<_>>(), values[start..].to_vec());
            prop_assert_eq!(r.last(), values.last().copied());
            prop_assert!(r.len() <= cap);
        }
    }
}
