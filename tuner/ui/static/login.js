/* The login form: check the token with POST /ui/login, keep it in this tab's sessionStorage. */
'use strict';

Tuner.start(() => {
  const form = document.getElementById('login-form');
  if (!form) return;
  const error = document.getElementById('login-error');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    const value = document.getElementById('token').value.trim();
    const res = await fetch('/ui/login', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: value }),
    });
    if (res.status === 204) {
      Tuner.setToken(value);
      const next = new URLSearchParams(location.search).get('next');
      location.assign(next && next.startsWith('/') && !next.startsWith('//') ? next : '/');
      return;
    }
    let message = res.status + ' ' + res.statusText;
    try { message = (await res.json()).detail || message; } catch (_) { /* keep status */ }
    error.textContent = message;
    error.hidden = false;
  });
});
