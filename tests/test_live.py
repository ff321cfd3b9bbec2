"""Why the live views follow training from the server (ui/live.py): Streamlit folds a browser timer's rerun request
into a pending navigation or edit with the timer's page and query string. If this starts failing, Streamlit keeps
the learner's page and values, and st.fragment(run_every=...) is safe again."""

from streamlit.runtime.scriptrunner_utils.script_requests import RerunData, ScriptRequests


def pending_after(*requests: RerunData) -> RerunData:
    queue = ScriptRequests()
    for request in requests:
        queue.request_rerun(request)
    return queue._rerun_data


def test_a_timer_request_takes_over_a_pending_navigation():
    """Issue 14, item 1: the learner clicks Results; the Train page's timer fires before Results starts."""
    pending = pending_after(
        RerunData(query_string="lr=3", page_script_hash="RESULTS"),
        RerunData(query_string="lr=3", page_script_hash="TRAIN", fragment_id="live", is_auto_rerun=True))
    assert pending.page_script_hash == "TRAIN" and not pending.fragment_id_queue  # a full run of the old page


def test_a_timer_request_takes_over_a_pending_edit_s_address():
    """Issue 14, item 2: the learner commits a learning rate; a timer sent with the old address follows."""
    pending = pending_after(
        RerunData(query_string="lr=0.5", page_script_hash="TRAIN"),
        RerunData(query_string="lr=3", page_script_hash="TRAIN", fragment_id="live", is_auto_rerun=True))
    assert pending.query_string == "lr=3"
