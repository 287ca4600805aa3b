//! The RTP port pool: even ports of the configured range, handed out without probing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Even ports of the range not held by a call of ours, least recently freed first: a
/// just-freed port goes to the back, so late packets of an old call do not land in a new one,
/// and allocating is a pop, not a probe of every port.
#[derive(Debug)]
pub(crate) struct PortPool {
    free: Mutex<VecDeque<u16>>,
}

impl PortPool {
    pub(crate) fn new(min: u16, max: u16) -> Self {
        let start = rand::random::<u32>() >> 1;
        PortPool {
            free: Mutex::new(even_ports(min, max, start).collect()),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.free.lock().map_or(0, |f| f.len())
    }

    /// Takes the least recently freed port; it comes back when the lease drops.
    pub(crate) fn take(self: &Arc<Self>) -> Option<PortLease> {
        let port = self.free.lock().ok()?.pop_front()?;
        Some(PortLease {
            pool: self.clone(),
            port,
        })
    }
}

/// A port taken from the pool; it goes back (to the end of the queue) when dropped.
#[derive(Debug)]
pub(crate) struct PortLease {
    pool: Arc<PortPool>,
    pub(crate) port: u16,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        if let Ok(mut free) = self.pool.free.lock() {
            free.push_back(self.port);
        }
    }
}

/// Even ports `p` with `min <= p` and `p + 1 <= max`, starting at the `start`-th one (mod count)
/// and wrapping around.
pub(crate) fn even_ports(min: u16, max: u16, start: u32) -> impl ExactSizeIterator<Item = u16> {
    let first = u32::from(min.max(2)).next_multiple_of(2);
    let count = if u32::from(max) > first {
        (u32::from(max) - first).div_ceil(2)
    } else {
        0
    };
    // `count` and the offsets stay below 2^15, so the arithmetic and the casts cannot overflow.
    let offset = if count == 0 { 0 } else { start % count };
    (0..count).map(move |i| (first + 2 * ((offset + i) % count)) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_ports_cover_the_range_once_and_wrap() {
        let ports: Vec<u16> = even_ports(20000, 20009, 3).collect();
        assert_eq!(ports, vec![20006, 20008, 20000, 20002, 20004]);
        // An odd minimum rounds up; the last even port needs its RTCP partner in range.
        assert_eq!(
            even_ports(20001, 20006, 0).collect::<Vec<_>>(),
            vec![20002, 20004]
        );
        assert_eq!(even_ports(20000, 20000, 0).len(), 0);
        assert_eq!(even_ports(65534, 65535, 7).collect::<Vec<_>>(), vec![65534]);
        assert_eq!(even_ports(0, 5, 0).collect::<Vec<_>>(), vec![2, 4]);
    }

    #[test]
    fn leases_go_back_to_the_end() {
        let pool = Arc::new(PortPool::new(40_000, 40_005));
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        let c = pool.take().unwrap();
        assert!(pool.take().is_none());
        let (first, second) = (a.port, c.port);
        drop(a);
        drop(c);
        let d = pool.take().unwrap();
        assert_eq!(d.port, first);
        assert_eq!(pool.len(), 1);
        let e = pool.take().unwrap();
        assert_eq!(e.port, second);
        drop((b, d, e));
        assert_eq!(pool.len(), 3);
    }
}
