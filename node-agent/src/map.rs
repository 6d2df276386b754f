//! openmosix.map files and cluster files (being written).
