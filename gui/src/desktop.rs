//! How the window programs present themselves to the desktop: each one's app id, the one
//! string that is its binary, its entry `assets/applications/ID.desktop`, its Wayland
//! app id (how the compositor finds that entry) and its X11 `WM_CLASS` (the entry's
//! `StartupWMClass`); and the suite's icon, which every window carries.

/// A window program of the suite, as the desktop knows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Program {
    /// The binary, the app id and the name of its `.desktop` entry (without `.desktop`).
    pub id: &'static str,
    /// The name people read, as the original spelled it.
    pub name: &'static str,
    /// The window's inside size at first start, in points (the layout tests check every
    /// window at this size: docs/openmosixview.md, HiDPI).
    pub size: [f32; 2],
}

/// The main window.
pub const VIEW: Program = Program {
    id: "openmosixview",
    name: "openMosixview",
    size: [1000.0, 520.0],
};
/// The process box.
pub const PROCS: Program = Program {
    id: "openmosixprocs",
    name: "openMosixprocs",
    size: [1100.0, 640.0],
};
/// The migration monitor.
pub const MIGMON: Program = Program {
    id: "openmosixmigmon",
    name: "openMosixmigmon",
    size: [1000.0, 660.0],
};
/// The load and memory history.
pub const ANALYZER: Program = Program {
    id: "openmosixanalyzer",
    name: "openMosixanalyzer",
    size: [1100.0, 640.0],
};
/// The process history.
pub const HISTORY: Program = Program {
    id: "openmosixhistory",
    name: "openMosixhistory",
    size: [900.0, 560.0],
};
/// Every window program, each with a `.desktop` entry.
pub const ALL: [Program; 5] = [VIEW, PROCS, MIGMON, ANALYZER, HISTORY];

/// The icon's name in the theme (`hicolor/SIZE/apps/NAME.png`), the same for every window.
pub const ICON_NAME: &str = "openmosixview";

/// The icon the windows carry (X11's `_NET_WM_ICON`; Wayland takes the `.desktop`'s).
const ICON_PNG: &[u8] = include_bytes!("../../assets/icons/hicolor/256x256/apps/openmosixview.png");

/// The suite's icon for a window, decoded from the PNG built into the program.
///
/// # Panics
/// Never: the PNG is the one in `assets/`, and a test decodes it.
#[must_use]
pub fn icon() -> egui::IconData {
    eframe::icon_data::from_png_bytes(ICON_PNG).expect("the built-in icon is a valid PNG")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_icon_decodes_to_a_256_pixel_square() {
        let icon = icon();
        assert_eq!((icon.width, icon.height), (256, 256));
        assert_eq!(icon.rgba.len(), 256 * 256 * 4);
        // Its corners are transparent (a rounded tile), its centre is not.
        assert_eq!(icon.rgba[3], 0);
        assert_eq!(icon.rgba[(128 * 256 + 128) * 4 + 3], 255);
    }

    /// A HiDPI laptop at scale 2: 2560×1440 pixels are 1280×720 points, less a title bar
    /// and a desktop panel (60 points between them).
    #[test]
    fn every_window_fits_a_scale_2_screen_at_first_start() {
        for p in ALL {
            let [w, h] = p.size;
            assert!(
                w <= 1280.0 && h <= 660.0,
                "{} opens at {w}x{h} points",
                p.id
            );
            assert!(
                w >= 800.0 && h >= 480.0,
                "{} opens too small: {w}x{h}",
                p.id
            );
        }
    }

    #[test]
    fn ids_are_distinct_lowercase_binary_names() {
        for (i, p) in ALL.iter().enumerate() {
            assert_eq!(p.id, p.name.to_lowercase());
            assert!(ALL[..i].iter().all(|q| q.id != p.id));
        }
    }
}
