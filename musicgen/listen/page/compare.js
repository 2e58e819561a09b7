(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("compare-data").textContent);
  var revealed = !data.settings.blind;
  var votes = {};
  function column(row, pos) { return data.columns[data.rows[row].order[pos]]; }
  function letter(pos) { return String.fromCharCode(65 + pos); }
  function tally() {
    var counts = {};
    data.columns.forEach(function (c) { counts[c.name] = 0; });
    Object.keys(votes).forEach(function (r) { counts[column(+r, votes[r]).name] += 1; });
    return counts;
  }
  function showTally() {
    var box = document.getElementById("tally");
    if (!revealed) { box.textContent = Object.keys(votes).length + " of " + data.rows.length + " rows voted"; return; }
    var counts = tally();
    var rows = Object.keys(counts).map(function (n) {
      return "<tr><td>" + esc(n) + "</td><td>" + counts[n] + "</td></tr>";
    }).join("");
    box.innerHTML = "<table><tr><th>candidate</th><th>favourite in rows</th></tr>" + rows + "</table>";
  }
  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) { return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]; });
  }
  function reveal() {
    revealed = true;
    var names = [];
    document.querySelectorAll(".name").forEach(function (el) {
      var c = column(+el.dataset.row, +el.dataset.pos);
      el.textContent = c.name;
      names.push(c.name);
    });
    var res = document.getElementById("results");
    if (res && data.results_html && !res.dataset.filled) { res.innerHTML = data.results_html; res.dataset.filled = "1"; }
    if (res) { res.hidden = false; }
    document.body.classList.add("revealed");
    showTally();
    return names;
  }
  function votesJson() {
    return {
      format: "musicgen-votes",
      page_created: data.created,
      blind: data.settings.blind,
      revealed: revealed,
      votes: Object.keys(votes).map(function (r) {
        return {row: +r + 1, choice: letter(votes[r]), candidate: column(+r, votes[r]).name,
                order: data.rows[+r].order.map(function (i) { return data.columns[i].name; })};
      }),
      tally: tally()
    };
  }
  function download() {
    var blob = new Blob([JSON.stringify(votesJson(), null, 2)], {type: "application/json"});
    var a = document.getElementById("download-link");
    a.href = URL.createObjectURL(blob);
    a.download = "votes.json";
    a.textContent = "votes.json";
    a.hidden = false;
    a.click();
  }
  document.querySelectorAll("input.vote").forEach(function (el) {
    el.addEventListener("change", function () { votes[el.dataset.row] = +el.dataset.pos; showTally(); });
  });
  var rb = document.getElementById("reveal");
  if (rb) { rb.addEventListener("click", reveal); }
  document.getElementById("download").addEventListener("click", download);
  showTally();
  window.musicgenCompare = {data: data, reveal: reveal, tally: tally, votes: votesJson};
})();
