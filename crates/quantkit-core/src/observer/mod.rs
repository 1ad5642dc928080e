//! Observers: statistics with memory that does not grow with the data (in progress).
