"""The book's explorers: controls over a figure that a moved control redraws in place."""
import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import IPython.display  # noqa: E402

from lakt.analysis import affine, figures, palette  # noqa: E402


class Handle:
    def __init__(self):
        self.updates = []

    def update(self, obj):
        self.updates.append(obj)


def test_live_shows_the_controls_then_the_first_figure_and_redraws_it_in_place(monkeypatch):
    shown, handle, drawn = [], Handle(), []

    def display(obj, display_id=False):
        shown.append((obj, display_id))
        return handle if display_id else None

    def draw(step, net):
        drawn.append((step, net))
        fig, ax = plt.subplots()
        ax.set_title(f"{step} {net}")
        return [ax] if net == "tanh" else ax  # an Axes, or several, is enough: live shows their figure

    monkeypatch.setattr(IPython.display, "display", display)
    step = widgets.FloatSlider(value=1.0, min=0, max=2)
    net = widgets.Dropdown(options=["relu", "tanh"], value="relu")
    palette.live(draw, step=step, net=net)
    (controls, _), (figure, display_id) = shown
    assert isinstance(controls, widgets.HBox) and list(controls.children) == [step, net]
    assert display_id is True and isinstance(figure, matplotlib.figure.Figure)  # an ordinary output, not an Output widget
    assert drawn == [(1.0, "relu")] and figure.axes[0].get_title() == "1.0 relu"
    assert not plt.fignum_exists(figure.number)  # closed: the inline backend does not show it a second time
    net.value = "tanh"
    step.value = 1.5
    assert drawn == [(1.0, "relu"), (1.0, "tanh"), (1.5, "tanh")]
    assert [f.axes[0].get_title() for f in handle.updates] == ["1.0 tanh", "1.5 tanh"]  # replaced, not appended
    assert len(shown) == 2


def test_controls_in_one_cell_and_the_figure_alone_in_the_next(monkeypatch):
    shown, handle, drawn = [], Handle(), []

    def display(obj, display_id=False):
        shown.append(obj)
        return handle if display_id else None

    def draw(step):
        drawn.append(step)
        fig, ax = plt.subplots()
        return ax

    monkeypatch.setattr(IPython.display, "display", display)
    controls = palette.controls(step=widgets.FloatSlider(value=1.0, min=0, max=2))
    assert isinstance(shown[0], widgets.HBox) and list(controls) == ["step"]
    palette.live(draw, show_controls=False, **controls)
    assert len(shown) == 2 and isinstance(shown[1], matplotlib.figure.Figure)   # the second cell shows the figure only
    controls["step"].value = 0.5
    assert drawn == [1.0, 0.5] and len(handle.updates) == 1
