//! Logging through defmt (feature `defmt`, for boards) and/or the `log` facade (feature
//! `log`, for hosted builds such as boards/linux-tap); nothing without either. Arguments
//! are formatted with `{:?}`, which both accept.

macro_rules! log_warn {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        defmt::warn!($($arg)*);
        #[cfg(feature = "log")]
        ::log::warn!($($arg)*);
    }};
}

macro_rules! log_info {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        defmt::info!($($arg)*);
        #[cfg(feature = "log")]
        ::log::info!($($arg)*);
    }};
}

pub(crate) use {log_info as info, log_warn as warn};
