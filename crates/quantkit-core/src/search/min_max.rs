//! `min_max` (AIMET `post_training_tf`): the observed range. The histogram keeps the true data
//! min and max beside its bins, so this equals what a `MinMaxObserver` would report.

use super::Bins;

pub(crate) fn clip_range(b: &Bins) -> (f32, f32) {
    (b.min, b.max)
}
