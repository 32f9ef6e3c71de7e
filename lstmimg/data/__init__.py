"""Stage 1, data: finding and splitting files (``folders``), decoding images (``images``), reading video
(``video_io``, the only module that imports OpenCV's video API), clips, motion input, augmentation,
disk-read training sets (``loaders``) and the description of a run's data (``dataset``)."""
