"""Stage 2, models: the registry (``registry``), the image models (``image``), the video model
(``video``), the parts they share (``layers``), the region slicer (``regions``) and torchvision
backbones (``backbones``)."""
